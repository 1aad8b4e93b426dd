/**
 * Table shapes as Kysely sees them. Portable across SQLite and PostgreSQL:
 * ids are text (UUIDs), booleans are integers 0/1, timestamps are ISO-8601 UTC text
 * (sortable, readable in both), lists are JSON text.
 */
export interface SubscriptionsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface UsersTable {
  id: string;
  subscription_id: string;
  username: string;
  /** Lower-cased username: uniqueness is case-insensitive. */
  username_key: string;
  email: string | null;
  password_hash: string | null;
  role: string;
  status: string;
  sso_enabled: number;
  api_access: number;
  ui_access: number;
  modules: string;
  created_at: string;
  updated_at: string;
}

export interface AuditEventsTable {
  id: string;
  at: string;
  subscription_id: string | null;
  actor_type: string;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  reason: string | null;
  source_ip: string | null;
  details: string | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: string;
  private_key_enc: string;
  created_at: string;
  /** Set when a newer key takes over signing. */
  retired_at: string | null;
  /** After this, the key no longer verifies and leaves the JWKS. */
  not_after: string | null;
}

/** Ordered log of changes that affect verification; read by other nodes to catch up. */
export interface ChangesTable {
  seq: number;
  at: string;
  entity: string;
  entity_id: string;
}

// --- clients (issue 3) ---
export interface ClientsTable {
  id: string;
  subscription_id: string;
  name: string;
  name_key: string;
  level: string;
  all_modules: number;
  modules: string;
  created_by: string;
  secret_hash: string;
  created_at: string;
  secret_rotated_at: string | null;
  last_used_at: string | null;
  expires_at: string | null;
}

/** Access tokens revoked before their expiry (RFC 7009); rows are pruned after expires_at. */
export interface RevokedTokensTable {
  jti: string;
  subscription_id: string | null;
  client_id: string | null;
  expires_at: string;
  revoked_at: string;
}
// --- end clients ---
// --- subscription tokens (issue 4) ---
/** A long-lived subscription token; `id` is its secret ID (the JWT's jti). */
export interface SubscriptionTokensTable {
  id: string;
  subscription_id: string;
  /** The manager who created it (null: the operator CLI). */
  created_by: string | null;
  created_by_name: string | null;
  modules: string;
  created_at: string;
  expires_at: string;
  deleted_at: string | null;
  /** Written at most once a minute per token per node (see LastUseTracker). */
  last_used_at: string | null;
  /** Set once by the node that claims the expiry alert (conditional UPDATE). */
  alert_claimed_at: string | null;
}

/** Outgoing notifications (mail, webhook): the delivery queue and the readable outbox. */
export interface OutboxTable {
  id: string;
  subscription_id: string;
  kind: string;
  channel: string;
  recipient: string | null;
  subject: string;
  body: string;
  secret_id: string | null;
  status: string;
  attempts: number;
  last_error: string | null;
  next_attempt_at: string;
  lease_until: string | null;
  created_at: string;
  sent_at: string | null;
}
// --- end subscription tokens ---
// >>> idp (issue 6)
/** Trusted external identity providers (token issuers), per subscription. */
export interface IdpsTable {
  id: string;
  subscription_id: string;
  name: string;
  issuer: string;
  /** Given explicitly; null = discovered from the issuer's /.well-known/openid-configuration. */
  jwks_uri: string | null;
  /** JSON arrays. */
  audiences: string;
  algorithms: string;
  /** Null = preferred_username, then email. */
  user_claim: string | null;
  modules_claim: string | null;
  allow_api_tokens: number;
  allow_exchange: number;
  cap_to_subject_expiry: number;
  /** 'api' (management API / CLI) or 'config' (YAML file; managed there). */
  source: string;
  created_at: string;
  updated_at: string;
}
// <<< idp
// >>> console (issue 7)
/** Web console sessions; `id_hash` is the SHA-256 (hex) of the session id in the cookie. */
export interface SessionsTable {
  id_hash: string;
  user_id: string;
  subscription_id: string;
  created_at: string;
  last_seen_at: string;
  /** Absolute end of the session, whatever its activity. */
  expires_at: string;
  source_ip: string | null;
  user_agent: string | null;
}
// <<< console

export interface Database {
  subscriptions: SubscriptionsTable;
  users: UsersTable;
  audit_events: AuditEventsTable;
  signing_keys: SigningKeysTable;
  changes: ChangesTable;
  clients: ClientsTable; // issue 3
  revoked_tokens: RevokedTokensTable; // issue 3
  // --- subscription tokens (issue 4) ---
  subscription_tokens: SubscriptionTokensTable;
  outbox: OutboxTable;
  // --- end subscription tokens ---
  idps: IdpsTable; // idp (issue 6)
  sessions: SessionsTable; // console (issue 7)
}
