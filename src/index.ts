/**
 * Gatehouse as a library: build and start a server in your own process (tests, embedding).
 * The client SDK is a separate entry point: `gatehouse/client`.
 */
export { createGatehouse, createCore, createLogger, type Gatehouse, type Services, type CreateOptions } from './app.ts';
export { loadConfig, ConfigError, type Config } from './config.ts';
export { MODULES, type ModuleName } from './domain/modules.ts';
export * from './domain/errors.ts';
export type { Principal, User, Subscription, AuthMethod } from './domain/types.ts';
