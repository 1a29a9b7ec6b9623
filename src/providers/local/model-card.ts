import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/** The optional `<model>.json` beside a `<model>.gguf`: what a team says about its fine-tune. */
const modelCardSchema = z.object({
  name: z.string().min(1).optional(),
  description: z.string().optional(),
  base_model: z.string().optional(),
  capabilities: z.array(z.string()).optional(),
  context_length: z.number().int().positive().optional(),
  pricing: z.object({ input_per_million: z.number().nonnegative(), output_per_million: z.number().nonnegative() }).optional(),
  fine_tuning: z
    .object({
      dataset: z.string().optional(),
      created_at: z.string().optional(),
      evaluation: z.record(z.string(), z.number()).optional(),
    })
    .optional(),
});

export type ModelCard = z.infer<typeof modelCardSchema>;

export type ModelCardResult = { card: ModelCard | undefined } | { problem: string };

/** Reads a sidecar card; a missing card is fine, a broken one is reported, never thrown. */
export async function readModelCard(filePath: string): Promise<ModelCardResult> {
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { card: undefined };
    return { problem: `model card cannot be read: ${(error as Error).message}` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { problem: 'model card is not valid JSON' };
  }
  const parsed = modelCardSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `model card field ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'}` };
  }
  return { card: parsed.data };
}
