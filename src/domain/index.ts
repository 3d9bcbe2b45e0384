export * from './lifecycle.js';
export * from './ids.js';
export * from './time.js';
export * from './json-answer.js';
