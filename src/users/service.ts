import { BadRequestError, ConflictError, ForbiddenError, NotFoundError } from '../domain/errors.ts';
import type { AuditEventInput, Principal, Role, User } from '../domain/types.ts';
import { MODULES, isModuleName, normalizeModules, type ModuleName } from '../domain/modules.ts';
import type { Store } from '../store/db.ts';
import {
  countActiveManagers, getUserById, getUserByUsername, insertUser, listUsers, publicUser, updateUser, type UserPatch,
} from '../store/users.ts';
import { hashPassword, passwordProblem } from '../crypto/passwords.ts';
import { requireManager } from '../access/access.ts';
import { actorOf, type AuditLog } from '../audit/audit.ts';
import { insertSubscription } from '../store/subscriptions.ts';
import type { LoginThrottle } from '../auth/throttle.ts';

export interface CreateUserInput {
  username: string;
  password?: string | undefined;
  email?: string | null | undefined;
  role: Role;
  apiAccess: boolean;
  uiAccess: boolean;
  modules: string[];
  ssoEnabled?: boolean | undefined;
}

export interface UpdateUserInput {
  password?: string | undefined;
  email?: string | null | undefined;
  role?: Role | undefined;
  apiAccess?: boolean | undefined;
  uiAccess?: boolean | undefined;
  modules?: string[] | undefined;
  ssoEnabled?: boolean | undefined;
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{1,63}$/;

function checkModules(mods: string[]): ModuleName[] {
  const bad = mods.filter((m) => !isModuleName(m));
  if (bad.length) throw new BadRequestError(`unknown module(s) ${bad.map((b) => JSON.stringify(b)).join(', ')}; valid modules are ${MODULES.join(', ')}`, 'invalid_module');
  return normalizeModules(mods as ModuleName[]);
}

function checkEmail(email: string | null | undefined): void {
  if (email && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw new BadRequestError(`'email' is not a valid address`, 'invalid_email');
}

/** Where the caller is acting from, for the audit log. */
export interface ActContext {
  ip: string | null;
}

/**
 * User management. Managers manage the users of their own subscription only; the operator
 * (CLI) acts on any subscription. Every change is audited and published to the change feed
 * in the same transaction, so every node's verifier sees it at once.
 */
export class UserService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly throttle: LoginThrottle,
  ) {}

  private async loadOwn(actor: Principal, id: string) {
    const manager = requireManager(actor);
    const u = await getUserById(this.store.db, id);
    // A user of another subscription is reported as absent: ids don't leak across tenants.
    if (!u || u.subscriptionId !== manager.subscriptionId) throw new NotFoundError(`No user with id '${id}' in your subscription.`, 'user_not_found');
    return { manager, user: u };
  }

  async create(actor: Principal, input: CreateUserInput, ctx: ActContext): Promise<User> {
    const manager = requireManager(actor);
    return this.createIn(manager.subscriptionId, input, { ...actorOf(actor), sourceIp: ctx.ip });
  }

  /** Create a user in a subscription; `by` is who does it (a manager or the operator). */
  async createIn(
    subscriptionId: string,
    input: CreateUserInput,
    by: { actorType: AuditEventInput['actorType']; actorId: string | null; actorName: string | null; sourceIp: string | null },
  ): Promise<User> {
    if (!USERNAME.test(input.username)) {
      throw new BadRequestError(`'username' must be 2-64 characters: letters, digits and . _ @ + - (starting with a letter or digit)`, 'invalid_username');
    }
    checkEmail(input.email);
    const modules = checkModules(input.modules);
    let passwordHash: string | null = null;
    if (input.password !== undefined) {
      const problem = passwordProblem(input.password);
      if (problem) throw new BadRequestError(problem, 'weak_password');
      passwordHash = await hashPassword(input.password);
    } else if (!input.ssoEnabled) {
      throw new BadRequestError(`'password' is required unless 'ssoEnabled' is true`, 'password_required');
    }
    const user = await this.store.transaction(async (tx) => {
      if (await getUserByUsername(tx, input.username)) throw new ConflictError(`A user named '${input.username}' already exists.`, 'username_taken');
      const u = await insertUser(tx, {
        subscriptionId,
        username: input.username,
        email: input.email ?? null,
        passwordHash,
        role: input.role,
        ssoEnabled: input.ssoEnabled ?? false,
        apiAccess: input.apiAccess,
        uiAccess: input.uiAccess,
        modules,
      });
      await this.audit.record(
        { ...by, subscriptionId, action: 'user.create', targetType: 'user', targetId: u.id, outcome: 'success',
          details: { username: u.username, role: u.role, apiAccess: u.apiAccess, uiAccess: u.uiAccess, modules, ssoEnabled: u.ssoEnabled } },
        tx,
      );
      await this.store.recordChange(tx, 'user', u.id);
      return u;
    }).catch((e: unknown) => {
      // Two creates racing for one name: the unique index decides; say so plainly.
      if (e instanceof Error && /unique|duplicate/i.test(e.message) && !(e instanceof ConflictError)) {
        throw new ConflictError(`A user named '${input.username}' already exists.`, 'username_taken');
      }
      throw e;
    });
    this.store.notify('user', user.id);
    return publicUser(user);
  }

  async list(actor: Principal): Promise<User[]> {
    const manager = requireManager(actor);
    return (await listUsers(this.store.db, manager.subscriptionId)).map(publicUser);
  }

  async get(actor: Principal, id: string): Promise<User & { locked: boolean }> {
    const { user } = await this.loadOwn(actor, id);
    return { ...publicUser(user), locked: await this.throttle.isLocked(user.username) };
  }

  async update(actor: Principal, id: string, input: UpdateUserInput, ctx: ActContext): Promise<User> {
    const { manager, user } = await this.loadOwn(actor, id);
    const patch: UserPatch = {};
    if (input.email !== undefined) {
      checkEmail(input.email);
      patch.email = input.email;
    }
    if (input.modules !== undefined) patch.modules = checkModules(input.modules);
    if (input.role !== undefined) patch.role = input.role;
    if (input.apiAccess !== undefined) patch.apiAccess = input.apiAccess;
    if (input.uiAccess !== undefined) patch.uiAccess = input.uiAccess;
    if (input.ssoEnabled !== undefined) patch.ssoEnabled = input.ssoEnabled;
    if (input.password !== undefined) {
      const problem = passwordProblem(input.password);
      if (problem) throw new BadRequestError(problem, 'weak_password');
      patch.passwordHash = await hashPassword(input.password);
    }
    await this.store.transaction(async (tx) => {
      if (patch.role === 'user' && user.role === 'manager' && user.status === 'active' && (await countActiveManagers(tx, user.subscriptionId)) <= 1) {
        throw new ConflictError('This is the last active manager of the subscription; make another manager first.', 'last_manager');
      }
      await updateUser(tx, id, patch);
      const { passwordHash: _p, ...shown } = patch;
      await this.audit.record(
        { ...actorOf(manager), sourceIp: ctx.ip, action: 'user.update', targetType: 'user', targetId: id, outcome: 'success',
          details: { ...shown, ...(input.password !== undefined ? { passwordChanged: true } : {}) } },
        tx,
      );
      await this.store.recordChange(tx, 'user', id);
    });
    this.store.notify('user', id);
    return publicUser((await getUserById(this.store.db, id))!);
  }

  async setStatus(actor: Principal, id: string, status: 'active' | 'deactivated', ctx: ActContext): Promise<User> {
    const { manager, user } = await this.loadOwn(actor, id);
    if (status === 'deactivated' && user.id === manager.userId) {
      throw new ForbiddenError('You cannot deactivate yourself.', 'self_deactivation');
    }
    await this.store.transaction(async (tx) => {
      if (status === 'deactivated' && user.role === 'manager' && user.status === 'active' && (await countActiveManagers(tx, user.subscriptionId)) <= 1) {
        throw new ConflictError('This is the last active manager of the subscription.', 'last_manager');
      }
      await updateUser(tx, id, { status });
      await this.audit.record(
        { ...actorOf(manager), sourceIp: ctx.ip, action: status === 'active' ? 'user.activate' : 'user.deactivate',
          targetType: 'user', targetId: id, outcome: 'success', details: { username: user.username } },
        tx,
      );
      await this.store.recordChange(tx, 'user', id);
    });
    this.store.notify('user', id);
    return publicUser((await getUserById(this.store.db, id))!);
  }

  async unlock(actor: Principal, id: string, ctx: ActContext): Promise<void> {
    const { manager, user } = await this.loadOwn(actor, id);
    await this.throttle.unlock(user.username);
    await this.audit.record({ ...actorOf(manager), sourceIp: ctx.ip, action: 'user.unlock', targetType: 'user', targetId: id, outcome: 'success' });
  }

  /** Operator path (CLI): activate or deactivate by username, in any subscription. */
  async operatorSetStatus(username: string, status: 'active' | 'deactivated'): Promise<User> {
    const user = await getUserByUsername(this.store.db, username);
    if (!user) throw new NotFoundError(`No user named '${username}'.`, 'user_not_found');
    await this.store.transaction(async (tx) => {
      await updateUser(tx, user.id, { status });
      await this.audit.record(
        { subscriptionId: user.subscriptionId, actorType: 'operator', actorId: null, actorName: null,
          action: status === 'active' ? 'user.activate' : 'user.deactivate', targetType: 'user', targetId: user.id,
          outcome: 'success', details: { username: user.username } },
        tx,
      );
      await this.store.recordChange(tx, 'user', user.id);
    });
    this.store.notify('user', user.id);
    return publicUser((await getUserById(this.store.db, user.id))!);
  }

  /** Operator path (CLI, bootstrap): a new subscription with its first manager. */
  async createSubscription(name: string, manager: { username: string; password: string; email?: string | null }) {
    const problem = passwordProblem(manager.password);
    if (problem) throw new BadRequestError(problem, 'weak_password');
    if (!USERNAME.test(manager.username)) throw new BadRequestError(`invalid manager username '${manager.username}'`, 'invalid_username');
    checkEmail(manager.email);
    const passwordHash = await hashPassword(manager.password);
    const result = await this.store.transaction(async (tx) => {
      if (await getUserByUsername(tx, manager.username)) throw new ConflictError(`A user named '${manager.username}' already exists.`, 'username_taken');
      const sub = await insertSubscription(tx, name);
      const u = await insertUser(tx, {
        subscriptionId: sub.id, username: manager.username, email: manager.email ?? null, passwordHash,
        role: 'manager', apiAccess: true, uiAccess: true, modules: [...MODULES],
      });
      await this.audit.record(
        { subscriptionId: sub.id, actorType: 'operator', actorId: null, actorName: null, action: 'subscription.create',
          targetType: 'subscription', targetId: sub.id, outcome: 'success', details: { name, manager: manager.username } },
        tx,
      );
      // A new user, like every other user change, is on the change feed: nodes (and other
      // processes, the CLI) that remembered this username as unknown forget it (UserDirectory).
      await this.store.recordChange(tx, 'user', u.id);
      return { subscription: sub, manager: publicUser(u) };
    });
    this.store.notify('user', result.manager.id);
    return result;
  }
}
