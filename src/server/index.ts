/** The HTTP batch scoring server: settings and start-up. */
export { startServer, type AttnScoreServer, type ServerOptions } from './app.js';
export {
  DEFAULT_BODY_LIMIT,
  isLoopback,
  resolveServerConfig,
  type ServerConfig,
  type ServerConfigInput,
} from './config.js';
