import { Field, ObjectType } from 'type-graphql';
import type { ApiError } from '../../errors/api-error';
import { GenerateResponse } from './generate.type';

@ObjectType({ description: 'One event of a streamed generation: the next text, and on the last event the whole answer.' })
export class GenerateStreamEvent {
  @Field({ description: 'The next piece of generated text; empty on the last event.' })
  text!: string;

  @Field(() => GenerateResponse, {
    nullable: true,
    description: 'Null until the last event, which carries the complete answer (metrics, cost, generation_id).',
  })
  response!: GenerateResponse | null;
}

/** What the stream's source yields: an event, or the error that ends it (raised by the field resolver, so it reaches the client as a GraphQL error). */
export type StreamSourceItem = GenerateStreamEvent | { readonly failure: ApiError };
