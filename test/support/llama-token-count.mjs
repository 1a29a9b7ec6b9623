// Counts tokens with llama.cpp's own tokenizer, as an independent reference for the tests.
// A script file, not `node -e`: node-llama-cpp re-runs process.execArgv to test its binary.
const [modelPath, text] = process.argv.slice(2);
const { getLlama } = await import('node-llama-cpp');
const llama = await getLlama({ build: 'never', gpu: false, logLevel: 'error' });
const model = await llama.loadModel({ modelPath });
const tokens = model.tokenize(text, false);
const withBos = model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? tokens.length + 1 : tokens.length;
process.stdout.write(JSON.stringify({ tokens: tokens.length, withBos }));
await model.dispose();
