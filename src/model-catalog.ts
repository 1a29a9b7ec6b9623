import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './config-error';

/**
 * The model catalog: what the gateway knows about models before asking any upstream
 * (names, context lengths, prices), and the OpenAI-compatible endpoints to discover models from.
 * The committed default lists OpenAI's models; a user's catalog (MODEL_CATALOG) is merged over it.
 */

const pricingSchema = z.object({
  input_per_million: z.number().nonnegative(),
  output_per_million: z.number().nonnegative(),
});

const modelEntrySchema = z
  .object({
    id: z.string().min(1),
    name: z.string().min(1).optional(),
    /** The one provider that serves the model; or `endpoints`, for several. */
    provider: z.string().min(1).optional(),
    /** Several endpoints serving the same model (replicas), balanced by least requests in flight. */
    endpoints: z
      .array(z.string().min(1))
      .min(1)
      .refine((names) => new Set(names).size === names.length, 'names an endpoint twice')
      .optional(),
    /** Models tried in order when this one's endpoints fail with a retryable error. */
    fallbacks: z.array(z.string().min(1)).optional(),
    type: z.enum(['commercial', 'fine-tuned']).optional(),
    description: z.string().optional(),
    context_length: z.number().int().positive().optional(),
    capabilities: z.array(z.string()).optional(),
    api: z.enum(['chat', 'completion']).default('chat'),
    tokenizer: z.enum(['cl100k_base', 'o200k_base']).default('cl100k_base'),
    pricing: pricingSchema.optional(),
    /** For an OpenAI base model: the price of the account's fine-tunes of it (`ft:<id>:...`). */
    fine_tuned_pricing: pricingSchema.optional(),
    upstream_model: z.string().min(1).optional(),
  })
  .refine((entry) => (entry.provider === undefined) !== (entry.endpoints === undefined), {
    message: 'needs exactly one of "provider" and "endpoints"',
  })
  .refine((entry) => !entry.fallbacks?.includes(entry.id), { message: 'lists itself among its fallbacks', path: ['fallbacks'] });

const endpointNamePattern = /^[a-z0-9][a-z0-9_-]*$/;
const reservedProviderNames = new Set(['openai', 'local']);

const endpointSchema = z.object({
  name: z
    .string()
    .regex(endpointNamePattern, 'lower-case letters, digits, "-" and "_"')
    .refine((name) => !reservedProviderNames.has(name), 'is reserved for a built-in provider'),
  base_url: z.url(),
  /** The environment variable holding this endpoint's key; the key itself never sits in the catalog. */
  api_key_env: z.string().min(1).optional(),
  model_type: z.enum(['commercial', 'fine-tuned']).default('fine-tuned'),
  id_prefix: z.string().default(''),
  max_tokens_parameter: z.enum(['max_tokens', 'max_completion_tokens']).default('max_tokens'),
  concurrency: z.number().int().positive().optional(),
  tokenizer: z.enum(['cl100k_base', 'o200k_base']).default('cl100k_base'),
});

const catalogFileSchema = z.object({
  models: z.array(modelEntrySchema).default([]),
  endpoints: z.array(endpointSchema).default([]),
});

export type CatalogModelEntry = z.infer<typeof modelEntrySchema>;
export type EndpointEntry = z.infer<typeof endpointSchema>;
export interface ModelCatalog {
  readonly models: readonly CatalogModelEntry[];
  readonly endpoints: readonly EndpointEntry[];
}

function readCatalogFile(filePath: string): ModelCatalog {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(filePath, 'utf8'));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(`MODEL_CATALOG: cannot read ${filePath}: ${reason}`);
  }
  const parsed = catalogFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`MODEL_CATALOG: ${filePath} is not a valid catalog: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Loads the default catalog and merges the user's over it: models by id, endpoints by name. */
export function loadModelCatalog(defaultPath: string, userPath: string | undefined): ModelCatalog {
  const base = readCatalogFile(defaultPath);
  if (!userPath) return checkProviders(base);
  const user = readCatalogFile(userPath);
  const models = new Map(base.models.map((entry) => [entry.id, entry]));
  for (const entry of user.models) models.set(entry.id, entry);
  const endpoints = new Map(base.endpoints.map((entry) => [entry.name, entry]));
  for (const entry of user.endpoints) endpoints.set(entry.name, entry);
  return checkProviders({ models: [...models.values()], endpoints: [...endpoints.values()] });
}

/** Model id to the models tried when its endpoints fail, for the catalog models that list any. */
export function fallbacksOf(catalog: ModelCatalog): ReadonlyMap<string, readonly string[]> {
  return new Map(catalog.models.flatMap((entry) => (entry.fallbacks?.length ? [[entry.id, entry.fallbacks] as const] : [])));
}

/**
 * Warnings for fallbacks the catalog does not describe: they work only if an endpoint's discovery lists
 * them, and a typo would silently leave a model without its fallback.
 */
export function uncataloguedFallbacks(catalog: ModelCatalog): string[] {
  const known = new Set(catalog.models.map((entry) => entry.id));
  return catalog.models.flatMap((entry) =>
    (entry.fallbacks ?? [])
      .filter((id) => !known.has(id))
      .map((id) => `model "${entry.id}" falls back to "${id}", which the catalog does not list: it is tried only if an endpoint serves it`),
  );
}

/** The providers that serve a catalog model: its `endpoints`, or its one `provider`. */
export function servingProviders(entry: CatalogModelEntry): readonly string[] {
  return entry.endpoints ?? (entry.provider === undefined ? [] : [entry.provider]);
}

function checkProviders(catalog: ModelCatalog): ModelCatalog {
  const providers = new Set([...reservedProviderNames, ...catalog.endpoints.map((endpoint) => endpoint.name)]);
  for (const entry of catalog.models) {
    const unknown = servingProviders(entry).find((name) => !providers.has(name));
    if (unknown) {
      throw new ConfigError(
        `MODEL_CATALOG: model "${entry.id}" names provider "${unknown}", which is neither built in nor a configured endpoint`,
      );
    }
    // Local models are files in LOCAL_MODELS_DIR, not catalog entries a replica list could name.
    if (entry.endpoints?.includes('local')) {
      throw new ConfigError(`MODEL_CATALOG: model "${entry.id}" lists "local" among its endpoints; local models have one provider`);
    }
  }
  return catalog;
}
