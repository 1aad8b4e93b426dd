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

export interface Database {
  subscriptions: SubscriptionsTable;
  users: UsersTable;
  audit_events: AuditEventsTable;
  signing_keys: SigningKeysTable;
  changes: ChangesTable;
  idps: IdpsTable; // idp (issue 6)
}
