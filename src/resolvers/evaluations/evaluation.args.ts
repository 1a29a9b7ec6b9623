import { ArgsType, Field, Float, Int } from 'type-graphql';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../services/paging';
import { EvaluationPromptInput, ScorerInput } from './evaluation.type';

@ArgsType()
export class StartEvaluationArgs {
  @Field(() => String, { nullable: true, description: 'A name for people (at most 200 characters).' })
  name?: string | null;

  @Field({ name: 'dataset_id', description: 'The dataset whose cases are run.' })
  dataset_id!: string;

  @Field(() => [EvaluationPromptInput], { description: 'The prompt versions (1 to 10).' })
  prompts!: EvaluationPromptInput[];

  @Field(() => [String], { name: 'model_ids', description: 'The models (1 to 10, distinct).' })
  model_ids!: string[];

  @Field(() => [ScorerInput], { description: 'How each cell is scored (1 to 10, distinct names).' })
  scorers!: ScorerInput[];

  @Field(() => Int, { name: 'max_tokens', nullable: true, description: "Overrides the prompt versions' max_tokens (1 to 2048)." })
  max_tokens?: number | null;

  @Field(() => Float, { nullable: true, description: "Overrides the prompt versions' temperature (0 to 2)." })
  temperature?: number | null;

  @Field(() => Float, { name: 'top_p', nullable: true, description: "Overrides the prompt versions' top_p (0 to 1)." })
  top_p?: number | null;
}

@ArgsType()
export class EvaluationIdArgs {
  @Field({ name: 'evaluation_id', description: 'The run id.' })
  evaluation_id!: string;
}

@ArgsType()
export class EvaluationsArgs {
  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_PAGE_SIZE, description: `Page size, 1 to ${MAX_PAGE_SIZE}.` })
  limit?: number | null;

  @Field(() => String, { nullable: true, description: "The previous page's next_cursor." })
  cursor?: string | null;
}

@ArgsType()
export class EvaluationResultsArgs extends EvaluationsArgs {
  @Field({ name: 'evaluation_id', description: 'The run id.' })
  evaluation_id!: string;

  @Field(() => String, { name: 'model_id', nullable: true, description: "Only this model's cells." })
  model_id?: string | null;
}
