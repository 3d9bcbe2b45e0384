export * from './lifecycle.js';
export * from './ids.js';
