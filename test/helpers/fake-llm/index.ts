export * from './server.js';
export * from './openai.js';
export * from './anthropic.js';
