/** The options Node was started with: its command line's, then NODE_OPTIONS'. */
export const nodeArguments: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];

/**
 * Whether the operator gave a V8 flag that `flag` matches, spelt with dashes (V8 reads `_` as `-`
 * too). Node accepts few V8 flags in NODE_OPTIONS, so in practice that is the command line.
 */
export function operatorGave(flag: RegExp): boolean {
  return nodeArguments.some((argument) => flag.test(argument.replace(/_/g, '-')));
}
