import { ArgsType, Field } from 'type-graphql';

@ArgsType()
export class ModelArgs {
  @Field({ description: 'Model identifier, as listed by `models`.' })
  model_id!: string;
}
