/** The options Node was started with: its command line's, then NODE_OPTIONS'. */
export const nodeArguments: readonly string[] = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean)];
