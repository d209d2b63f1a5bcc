// Secrets are not in wrangler.toml, so `wrangler types` cannot see them.
interface Env {
  API_TOKEN?: string;
}
