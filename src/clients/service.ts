import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { BadRequestError, ConflictError, ForbiddenError, GatehouseError, NotFoundError, UnauthorizedError } from '../domain/errors.ts';
import type { AuditEventInput, Client, ClientLevel, Principal } from '../domain/types.ts';
import { MODULES, intersectModules, isModuleName, normalizeModules, type ModuleName } from '../domain/modules.ts';
import type { Store } from '../store/db.ts';
import { StateCache } from '../tokens/state-cache.ts';
import type { GatehouseClaims, IssuedToken, TokenService } from '../tokens/tokens.ts';
import type { UserDirectory } from '../users/directory.ts';
import type { LoginThrottle } from '../auth/throttle.ts'; // harden (issue 10)
import { actorOf, type AuditLog } from '../audit/audit.ts';
import { clientAccessRefusal, modulesBeyond, requireClientManagement } from '../access/access.ts';
import {
  deleteClient, getClient, getClientByName, insertClient, listClients, publicClient, setClientSecret, touchClient, type ClientRecord,
} from './store.ts';

export const CLIENT_ENTITY = 'client';

type UserPrincipal = Extract<Principal, { kind: 'user' }>;

export interface CreateClientInput {
  name: string;
  level: ClientLevel;
  /** Module names, or ["all"] for every module the creator has. */
  modules: string[];
  /** ISO-8601 time after which the client no longer authenticates (and its tokens stop). */
  expiresAt?: string | null | undefined;
}

export interface CreatedClient extends Client {
  /** Shown this once; only its SHA-256 is stored. */
  clientSecret: string;
}

/** Who acts, for the audit log. */
export type By = Pick<AuditEventInput, 'actorType' | 'actorId' | 'actorName'> & { sourceIp: string | null };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// eslint-disable-next-line no-control-regex
const NAME_BAD = /[\u0000-\u001f\u007f]/;
/** Compared against when the client does not exist, so an unknown id costs the same as a wrong secret. */
const DUMMY_HASH = createHash('sha256').update('gatehouse-no-such-client').digest();

export const newClientSecret = (): string => randomBytes(32).toString('base64url');
export const hashClientSecret = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

/** perf (issue 9): the stored secret hash as bytes, decoded once per cached client record. */
const hashBytes = new WeakMap<ClientRecord, Buffer>();
function storedHash(c: ClientRecord): Buffer {
  let b = hashBytes.get(c);
  if (!b) hashBytes.set(c, (b = Buffer.from(c.secretHash, 'hex')));
  return b;
}

export function isClientId(v: string): boolean {
  return UUID.test(v);
}

function parseModules(mods: string[]): { allModules: boolean; modules: ModuleName[] } {
  if (mods.some((m) => m.toLowerCase() === 'all')) {
    if (mods.length > 1) throw new BadRequestError(`'modules': "all" cannot be combined with module names`, 'invalid_module');
    return { allModules: true, modules: [...MODULES] };
  }
  const bad = mods.filter((m) => !isModuleName(m));
  if (bad.length) {
    throw new BadRequestError(
      `'modules': unknown module(s) ${bad.map((b) => JSON.stringify(b)).join(', ')}; valid modules are ${MODULES.join(', ')}, or "all"`,
      'invalid_module',
    );
  }
  if (mods.length === 0) throw new BadRequestError(`'modules' must name at least one module, or "all"`, 'invalid_module');
  return { allModules: false, modules: normalizeModules(mods as ModuleName[]) };
}

function checkName(name: string): string {
  const n = name.trim();
  if (n.length < 1 || n.length > 100) throw new BadRequestError(`'name' must be 1-100 characters`, 'invalid_name');
  if (NAME_BAD.test(n)) throw new BadRequestError(`'name' must not contain control characters`, 'invalid_name');
  return n;
}

function checkExpiry(v: string | null | undefined): string | null {
  if (v === undefined || v === null) return null;
  const t = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(t)) {
    throw new BadRequestError(`'expiresAt' must be an ISO-8601 date-time such as 2030-01-31T00:00:00Z`, 'invalid_expiry');
  }
  if (t <= Date.now()) throw new BadRequestError(`'expiresAt' must be in the future`, 'invalid_expiry');
  return new Date(t).toISOString();
}

/**
 * OIDC clients (spec 000, 001): creation with a one-time secret, management by managers and
 * by users for their own user-level clients, client-credentials authentication, and the
 * token resolvers that keep each token tied to its client's (and owner's) live state.
 */
export class ClientService {
  /** Live client state for verification, kept current by the change feed (entity 'client'). */
  readonly cache: StateCache<ClientRecord>;

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly users: UserDirectory,
    private readonly tokens: TokenService,
  ) {
    this.cache = new StateCache(store, CLIENT_ENTITY, (id) => getClient(store.db, id));
  }

  // ----- management -----

  async create(actor: Principal, input: CreateClientInput, ctx: { ip: string | null }): Promise<CreatedClient> {
    const p = requireClientManagement(actor);
    return this.createFor(p, input, { ...actorOf(p), sourceIp: ctx.ip });
  }

  /** Create a client owned by `owner` (checked against the owner's rights); `by` did it. */
  async createFor(owner: UserPrincipal, input: CreateClientInput, by: By): Promise<CreatedClient> {
    requireClientManagement(owner);
    const name = checkName(input.name);
    if (input.level !== 'user' && input.level !== 'subscription') {
      throw new BadRequestError(`'level' must be "user" or "subscription"`, 'invalid_level');
    }
    if (input.level === 'subscription' && owner.role !== 'manager') {
      throw new ForbiddenError('Only managers can create subscription-level clients; you can create user-level clients.', 'manager_required');
    }
    const { allModules, modules } = parseModules(input.modules);
    if (!allModules) {
      const beyond = modulesBeyond(owner, modules);
      if (beyond.length) {
        throw new ForbiddenError(
          `A client can carry only modules its creator has API permission for; '${owner.username}' lacks ${beyond.join(', ')}.`,
          'module_permission_required',
        );
      }
    }
    const expiresAt = checkExpiry(input.expiresAt);
    const secret = newClientSecret();
    const id = randomUUID();
    const taken = () => new ConflictError(`A client named '${name}' already exists in this subscription.`, 'client_name_taken');
    const created = await this.store
      .transaction(async (tx) => {
        if (await getClientByName(tx, owner.subscriptionId, name)) throw taken();
        const c = await insertClient(tx, {
          id, subscriptionId: owner.subscriptionId, name, level: input.level, allModules, modules,
          createdBy: owner.userId, secretHash: hashClientSecret(secret), expiresAt,
        });
        await this.audit.record(
          { ...by, subscriptionId: owner.subscriptionId, action: 'client.create', targetType: 'client', targetId: id, outcome: 'success',
            details: { name, level: input.level, modules: allModules ? 'all' : modules, owner: owner.username, expiresAt } },
          tx,
        );
        await this.store.recordChange(tx, CLIENT_ENTITY, id);
        return c;
      })
      .catch((e: unknown) => {
        if (e instanceof Error && !(e instanceof GatehouseError) && /unique|duplicate/i.test(e.message)) throw taken();
        throw e;
      });
    this.store.notify(CLIENT_ENTITY, id);
    return { ...publicClient(created), clientSecret: secret };
  }

  /** Managers: every client of the subscription. Others: their own user-level clients. */
  async list(actor: Principal): Promise<Client[]> {
    const p = requireClientManagement(actor);
    const rows = p.role === 'manager'
      ? await listClients(this.store.db, { subscriptionId: p.subscriptionId })
      : await listClients(this.store.db, { subscriptionId: p.subscriptionId, createdBy: p.userId, level: 'user' });
    return rows.map(publicClient);
  }

  private async loadOwn(actor: Principal, id: string): Promise<{ p: UserPrincipal; client: ClientRecord }> {
    const p = requireClientManagement(actor);
    const c = isClientId(id) ? await getClient(this.store.db, id) : undefined;
    // A client of another subscription is reported as absent: ids don't leak across tenants.
    if (!c || c.subscriptionId !== p.subscriptionId) throw new NotFoundError(`No client with id '${id}' in your subscription.`, 'client_not_found');
    const refusal = clientAccessRefusal(p, c);
    if (refusal) throw new ForbiddenError(refusal, 'client_management_denied');
    return { p, client: c };
  }

  async get(actor: Principal, id: string): Promise<Client> {
    return publicClient((await this.loadOwn(actor, id)).client);
  }

  async delete(actor: Principal, id: string, ctx: { ip: string | null }): Promise<Client> {
    const { p, client } = await this.loadOwn(actor, id);
    return this.deleteAs(client, { ...actorOf(p), sourceIp: ctx.ip });
  }

  /** Delete; every token of the client stops working at once (StateCache via the change feed). */
  async deleteAs(client: ClientRecord, by: By): Promise<Client> {
    await this.store.transaction(async (tx) => {
      if (!(await deleteClient(tx, client.clientId))) throw new NotFoundError(`No client with id '${client.clientId}'.`, 'client_not_found');
      await this.audit.record(
        { ...by, subscriptionId: client.subscriptionId, action: 'client.delete', targetType: 'client', targetId: client.clientId,
          outcome: 'success', details: { name: client.name, level: client.level } },
        tx,
      );
      await this.store.recordChange(tx, CLIENT_ENTITY, client.clientId);
    });
    this.store.notify(CLIENT_ENTITY, client.clientId);
    return publicClient(client);
  }

  async rotateSecret(actor: Principal, id: string, ctx: { ip: string | null }): Promise<CreatedClient> {
    const { p, client } = await this.loadOwn(actor, id);
    return this.rotateAs(client, { ...actorOf(p), sourceIp: ctx.ip });
  }

  /**
   * New secret; the old one stops authenticating at once. Tokens issued before stay valid
   * until they expire (delete the client, or revoke them, to end them sooner).
   */
  async rotateAs(client: ClientRecord, by: By): Promise<CreatedClient> {
    const secret = newClientSecret();
    await this.store.transaction(async (tx) => {
      await setClientSecret(tx, client.clientId, hashClientSecret(secret));
      await this.audit.record(
        { ...by, subscriptionId: client.subscriptionId, action: 'client.rotate_secret', targetType: 'client', targetId: client.clientId,
          outcome: 'success', details: { name: client.name } },
        tx,
      );
      await this.store.recordChange(tx, CLIENT_ENTITY, client.clientId);
    });
    this.store.notify(CLIENT_ENTITY, client.clientId);
    const fresh = (await getClient(this.store.db, client.clientId)) ?? client;
    return { ...publicClient(fresh), clientSecret: secret };
  }

  /** The console's "generate token" (POST /api/v1/clients/{id}/token). */
  async tokenFor(actor: Principal, id: string, ctx: { ip: string | null }): Promise<IssuedToken> {
    const { p, client } = await this.loadOwn(actor, id);
    return this.issueToken(client, { via: 'console', by: { ...actorOf(p), sourceIp: ctx.ip } });
  }

  // ----- client credentials -----

  /**
   * Check a client ID + secret (SHA-256, constant-time compare). Throws 401 with a message
   * that says what is wrong, never which half of the pair was.
   */
  async authenticate(clientId: string | undefined, secret: string | undefined, ctx: { ip: string | null; via: string }): Promise<ClientRecord> {
    if (!clientId || !secret) {
      throw new UnauthorizedError('Client credentials are missing: send the client ID and client secret.', 'missing_credentials');
    }
    // >>> harden (issue 10): brute-force throttling per client ID (known or not) and per IP
    const throttleKey = clientId.trim().toLowerCase().slice(0, 64);
    const ip = ctx.ip ?? 'unknown';
    // perf (issue 9): skipped (no promise) when no failure can be on record for the client or the address
    const clear = this.throttle?.isClear(throttleKey, ip) ?? true;
    if (this.throttle && !clear) {
      await this.throttle.check(throttleKey, ip).catch(async (e: unknown) => {
        // Attributed to the client's subscription when the ID is one, so its managers see the refusals.
        const known = isClientId(throttleKey) ? await this.cache.get(throttleKey).catch(() => undefined) : undefined;
        await this.audit.record({
          subscriptionId: known?.subscriptionId ?? null, actorType: 'anonymous', actorId: null, actorName: null, action: 'client.authenticate',
          targetType: 'client', targetId: known?.clientId ?? null, outcome: 'denied', reason: (e as Error).message, sourceIp: ctx.ip,
          details: { via: ctx.via, clientId: throttleKey },
        });
        throw e;
      });
    }
    // <<< harden
    const c = clientId.length <= 64 && isClientId(clientId) ? await this.cache.get(clientId.toLowerCase()) : undefined;
    const given = createHash('sha256').update(secret, 'utf8').digest();
    const stored = c ? storedHash(c) : DUMMY_HASH;
    const ok = timingSafeEqual(given, stored.length === given.length ? stored : DUMMY_HASH) && c !== undefined;
    if (!ok || !c) {
      const lockedFor = this.throttle ? await this.throttle.failure(throttleKey, ip) : null; // harden (issue 10)
      await this.audit.record({
        subscriptionId: c?.subscriptionId ?? null, actorType: 'anonymous', actorId: c?.clientId ?? null, actorName: null,
        action: 'client.authenticate', targetType: 'client', targetId: c?.clientId ?? null, outcome: 'failure',
        reason: c ? 'wrong client secret' : 'unknown client id', sourceIp: ctx.ip,
        details: { via: ctx.via, ...(lockedFor ? { lockedForSeconds: lockedFor } : {}) },
      });
      if (lockedFor && c) {
        await this.audit.record({
          subscriptionId: c.subscriptionId, actorType: 'system', actorId: null, actorName: null, action: 'client.locked',
          targetType: 'client', targetId: c.clientId, outcome: 'success', reason: `locked for ${lockedFor}s after repeated failed authentications`, sourceIp: ctx.ip,
        });
      }
      throw new UnauthorizedError('Invalid client credentials: no client matches this client ID and secret.', 'invalid_credentials');
    }
    if (c.expiresAt && Date.parse(c.expiresAt) <= Date.now()) {
      await this.audit.record({
        subscriptionId: c.subscriptionId, actorType: 'client', actorId: c.clientId, actorName: c.name,
        action: 'client.authenticate', targetType: 'client', targetId: c.clientId, outcome: 'denied',
        reason: 'client expired', sourceIp: ctx.ip, details: { via: ctx.via },
      });
      throw new UnauthorizedError(`This client expired at ${c.expiresAt}.`, 'client_expired');
    }
    if (!clear) await this.throttle?.success(throttleKey); // harden (issue 10); perf: nothing to clear when clear
    return c;
  }

  // >>> harden (issue 10): client-authentication throttling and the manager's unlock
  throttle: LoginThrottle | undefined;
  /** Throttle failed client authentications (every endpoint that takes a client secret). */
  setThrottle(t: LoginThrottle): void {
    this.throttle = t;
  }

  /** Managers (and a user-level client's owner): clear the client's lockout. */
  async unlock(actor: Principal, id: string, ctx: { ip: string | null }): Promise<{ clientId: string; wasLocked: boolean }> {
    const { p, client } = await this.loadOwn(actor, id);
    const wasLocked = (await this.throttle?.isLocked(client.clientId)) ?? false;
    await this.throttle?.unlock(client.clientId);
    await this.audit.record({
      ...actorOf(p), sourceIp: ctx.ip, subscriptionId: client.subscriptionId, action: 'client.unlock', targetType: 'client',
      targetId: client.clientId, outcome: 'success', details: { wasLocked },
    });
    return { clientId: client.clientId, wasLocked };
  }
  // <<< harden

  /** Modules a client's token may use now: its grant, within the owner's current rights (user level). */
  async currentModules(c: ClientRecord): Promise<ModuleName[]> {
    if (c.level === 'subscription') return [...c.modules];
    const owner = await this.users.principalFor(c.createdBy, 'user_client');
    return c.allModules ? owner.modules : intersectModules(c.modules, owner.modules);
  }

  /**
   * Issue a client token: a user-level client's carries its owner's identity (refused while
   * the owner is deactivated or lacks API Access); a subscription-level client's carries no
   * user. Lifetime: tokens.ttlSeconds (4 h), never past the client's own expiry.
   */
  // perf (issue 9): last use is written at most once a second per client (the first use at
  // once), not on every token: a client fetching tokens in a loop cost one UPDATE per token.
  private readonly touched = new Map<string, number>();
  /** The UPDATE to wait for, or undefined when this client's last use was written within the second. */
  private touch(clientId: string): Promise<void> | undefined {
    const now = Date.now();
    const last = this.touched.get(clientId);
    if (last !== undefined && now - last < 1000) return undefined;
    if (this.touched.size >= 10_000) this.touched.clear();
    this.touched.set(clientId, now);
    return touchClient(this.store.db, clientId);
  }

  async issueToken(c: ClientRecord, opts: { via: string; by?: By; scope?: ModuleName[] | undefined; ip?: string | null }): Promise<IssuedToken> {
    const by: By = opts.by ?? { actorType: 'client', actorId: c.clientId, actorName: c.name, sourceIp: opts.ip ?? null };
    const deny = async (reason: string, err: GatehouseError) => {
      await this.audit.record({
        ...by, subscriptionId: c.subscriptionId, action: 'client.token', targetType: 'client', targetId: c.clientId,
        outcome: 'denied', reason, details: { via: opts.via },
      });
      throw err;
    };
    if (c.expiresAt && Date.parse(c.expiresAt) <= Date.now()) {
      return deny('client expired', new UnauthorizedError(`This client expired at ${c.expiresAt}.`, 'client_expired'));
    }
    let username: string | undefined;
    if (c.level === 'user') {
      const owner = await this.users.principalFor(c.createdBy, 'user_client').catch((e: unknown) => e as GatehouseError);
      if (owner instanceof Error) {
        return deny('owner cannot act', new UnauthorizedError(`The user who owns this client ${/deactivated/.test(owner.message) ? 'is deactivated' : 'no longer exists'}; its tokens are refused.`, 'user_deactivated'));
      }
      if (!owner.apiAccess) {
        return deny('owner lacks API access', new ForbiddenError("The user who owns this client does not have the 'API Access' permission.", 'api_access_required'));
      }
      username = owner.username;
    }
    const ttlCap = c.expiresAt ? Math.floor((Date.parse(c.expiresAt) - Date.now()) / 1000) : Number.POSITIVE_INFINITY;
    const ttl = Math.max(1, Math.min(this.tokens.opts.ttlSeconds, ttlCap));
    const issued = await this.tokens.issue({
      sub: c.level === 'user' ? c.createdBy : c.clientId,
      subscriptionId: c.subscriptionId,
      authMethod: c.level === 'user' ? 'user_client' : 'subscription_client',
      clientId: c.clientId,
      ...(username !== undefined ? { username } : {}),
      ...(opts.scope ? { modules: opts.scope, extra: { scope: opts.scope.join(' ') } } : {}),
      ttlSeconds: ttl,
    });
    const touching = this.touch(c.clientId);
    if (touching) await touching;
    await this.audit.recordIssuance({
      actorType: by.actorType, actorId: by.actorId, actorName: by.actorName, sourceIp: by.sourceIp,
      subscriptionId: c.subscriptionId, action: 'client.token', targetType: 'client', targetId: c.clientId,
      outcome: 'success', details: { via: opts.via, jti: issued.jti, level: c.level, expiresAt: issued.expiresAt.toISOString() },
    });
    return issued;
  }

  // ----- verification -----

  private async liveClient(claims: GatehouseClaims): Promise<ClientRecord> {
    const id = claims.client_id;
    return this.checkLive(typeof id === 'string' && isClientId(id) ? await this.cache.get(id) : undefined, claims);
  }

  /** perf (issue 9): liveClient() without a promise when the client's state is in memory; `null` when it must be loaded. */
  private liveClientSync(claims: GatehouseClaims): ClientRecord | null {
    const id = claims.client_id;
    if (typeof id !== 'string' || !isClientId(id)) return this.checkLive(undefined, claims);
    const hit = this.cache.peek(id);
    return hit ? this.checkLive(hit.value, claims) : null;
  }

  private checkLive(c: ClientRecord | undefined, claims: GatehouseClaims): ClientRecord {
    if (!c) throw new UnauthorizedError('The client of this token has been deleted.', 'client_deleted');
    if (c.subscriptionId !== claims.subscription_id) throw new UnauthorizedError('token subscription does not match its client', 'invalid_token');
    if (c.expiresAt && Date.parse(c.expiresAt) <= Date.now()) throw new UnauthorizedError('The client of this token has expired.', 'client_expired');
    return c;
  }

  /** Narrow to the scope the token was issued for, if any. */
  private static narrow(mods: ModuleName[], claims: GatehouseClaims): ModuleName[] {
    return Array.isArray(claims.modules) ? intersectModules(mods, claims.modules) : mods;
  }

  registerResolvers(tokens: TokenService): void {
    // perf (issue 9): both resolvers answer synchronously when the state they need is in memory.
    const userClient = (c: ClientRecord, claims: GatehouseClaims, owner: Principal & { kind: 'user' }): Principal => {
      const modules = ClientService.narrow(c.allModules ? owner.modules : intersectModules(c.modules, owner.modules), claims);
      return { ...owner, modules, clientId: c.clientId };
    };
    const userClientOf = (c: ClientRecord, claims: GatehouseClaims) => {
      if (c.level !== 'user' || c.createdBy !== claims.sub) throw new UnauthorizedError('token does not match its client', 'invalid_token');
      // Deactivated owner: 401 here, and the same token works again after reactivation.
      const owner = this.users.principalForSync(c.createdBy, 'user_client');
      return owner ? userClient(c, claims, owner) : this.users.principalFor(c.createdBy, 'user_client').then((o) => userClient(c, claims, o));
    };
    tokens.registerResolver('user_client', (claims) => {
      const c = this.liveClientSync(claims);
      return c ? userClientOf(c, claims) : this.liveClient(claims).then((l) => userClientOf(l, claims));
    });
    const subscriptionClientOf = (c: ClientRecord, claims: GatehouseClaims): Principal => {
      if (c.level !== 'subscription' || claims.sub !== c.clientId) throw new UnauthorizedError('token does not match its client', 'invalid_token');
      return {
        kind: 'subscription',
        subscriptionId: c.subscriptionId,
        modules: ClientService.narrow([...c.modules], claims),
        authMethod: 'subscription_client',
        clientId: c.clientId,
      };
    };
    tokens.registerResolver('subscription_client', (claims) => {
      const c = this.liveClientSync(claims);
      return c ? subscriptionClientOf(c, claims) : this.liveClient(claims).then((l) => subscriptionClientOf(l, claims));
    });
  }

  close(): void {
    this.cache.close();
  }
}
