import { validationError } from '../errors/api-error';

/*
 * Prompt templates: `{{variable}}` placeholders filled by plain substitution. No code runs and
 * nothing is escaped: the filled text goes to a model, not to a browser.
 */

/** `{{ name }}`: letters, digits, `_`, `-` and `.`, spaces around the name allowed. */
const placeholder = /\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}/g;

/** The placeholders a template names, in order of first use. */
export function templateVariables(template: string): string[] {
  const names = new Set<string>();
  for (const match of template.matchAll(placeholder)) names.add(match[1]!);
  return [...names];
}

/**
 * The template with every placeholder replaced by its variable's value. A placeholder without a
 * value is 400 naming it; variables the template does not name are ignored.
 */
export function fillTemplate(template: string, variables: Readonly<Record<string, string>>): string {
  const missing = templateVariables(template).filter((name) => !Object.hasOwn(variables, name));
  if (missing.length > 0) {
    throw validationError(
      `Missing template variable${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`,
      `the template names ${missing.map((name) => `{{${name}}}`).join(', ')} but no value was given`,
    );
  }
  // A function replacement: a value's `$&` or `$1` is text, not a back-reference.
  return template.replace(placeholder, (_match, name: string) => variables[name]!);
}
