/**
 * Who a request is from, after authentication: one shape whether the credential was a JWT, an API
 * key or nothing at all (anonymous access, when the config allows it).
 */
export interface RatePlan {
  /** Tokens added to the bucket per second. */
  ratePerSec: number;
  /** Bucket capacity: the largest burst admitted at once. */
  burst: number;
}

export interface Principal {
  /** Stable identity: the JWT `sub`, `key:<id>` for an API key, `anonymous`. Throttling keys on it. */
  subject: string;
  kind: 'jwt' | 'api-key' | 'anonymous';
  /** Models this principal may use; '*' for all. */
  models: readonly string[] | '*';
  /** Named plan from config, or explicit figures (an API key's own rate/burst). */
  plan: string | RatePlan | undefined;
}

export function mayUseModel(principal: Principal, model: string): boolean {
  return principal.models === '*' || principal.models.includes(model);
}
