import { type Kysely, type Migration, type MigrationProvider, Migrator, SqliteAdapter, sql } from 'kysely';

/**
 * One set of migrations for SQLite and PostgreSQL: only portable column types (text, integer) and
 * the schema builder, so both dialects run the same steps. Append new migrations; never edit one
 * that has shipped.
 */
export const migrations: Record<string, Migration> = {
  '0001_core': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('vault_state')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('kek_versions')
        .addColumn('version', 'integer', (c) => c.primaryKey())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('data_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('credential_id', 'text', (c) => c.notNull())
        .addColumn('wrapped_key', 'text', (c) => c.notNull())
        .addColumn('kek_ref', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('data_keys_kek_ref').on('data_keys').columns(['kek_ref', 'id']).execute();

      await db.schema
        .createTable('credentials')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('allowed_hosts', 'text', (c) => c.notNull())
        .addColumn('injection', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('subject', 'text')
        .addColumn('data_key_id', 'text', (c) => c.notNull())
        .addColumn('current_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('credentials_namespace_name', ['namespace', 'name'])
        .execute();

      await db.schema
        .createTable('credential_versions')
        .addColumn('credential_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('ciphertexts', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('credential_versions_pk', ['credential_id', 'version'])
        .execute();

      await db.schema
        .createTable('admin_tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('is_root', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
    },
  },
  '0002_agents_grants_audit': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('agents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('jwks', 'text')
        .addColumn('jwks_url', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('agents_namespace_name', ['namespace', 'name'])
        .execute();

      await db.schema
        .createTable('agent_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('agent_keys_agent').on('agent_keys').column('agent_id').execute();

      await db.schema
        .createTable('jwt_replay')
        .addColumn('jti_hash', 'text', (c) => c.primaryKey())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('jwt_replay_expires').on('jwt_replay').column('expires_at').execute();

      await db.schema
        .createTable('trusted_issuers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('audience', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('trusted_issuers_namespace_name', ['namespace', 'name'])
        .execute();

      await db.schema
        .createTable('workload_bindings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('issuer_id', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('claims', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('workload_bindings_issuer')
        .on('workload_bindings')
        .column('issuer_id')
        .execute();

      await db.schema
        .createTable('grants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('credential_id', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('reveal', 'integer', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_reason', 'text')
        .execute();
      await db.schema
        .createIndex('grants_agent_credential')
        .on('grants')
        .columns(['agent_id', 'credential_id'])
        .execute();
      await db.schema.createIndex('grants_credential').on('grants').column('credential_id').execute();

      await db.schema
        .createTable('audit_events')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('actor_type', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text')
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('target_type', 'text')
        .addColumn('target_id', 'text')
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('client_ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('request_id', 'text')
        .addColumn('details', 'text', (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_events_time').on('audit_events').column('time').execute();
      await db.schema
        .createIndex('audit_events_actor')
        .on('audit_events')
        .columns(['actor_id', 'seq'])
        .execute();
      await db.schema
        .createIndex('audit_events_target')
        .on('audit_events')
        .columns(['target_id', 'seq'])
        .execute();

      await db.schema
        .createTable('audit_head')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0003_access_generation': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('access_generation')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('value', 'bigint', (c) => c.notNull())
        .execute();
      await sql`insert into access_generation (id, value) values (1, 0)`.execute(db);
      // Every change to what decides an agent's access moves the generation, in the change's own
      // transaction, whoever makes it (another replica, a person with a SQL shell): caches of these
      // rows are good for exactly one generation (generation-cache.ts).
      if (db.getExecutor().adapter instanceof SqliteAdapter) {
        for (const [table, columns] of accessTables) {
          for (const event of ['insert', 'update', 'delete']) {
            const on = event === 'update' && columns ? `update of ${columns.join(', ')}` : event;
            await sql
              .raw(
                `create trigger ${table}_${event}_moves_access_generation after ${on} on ${table} ` +
                  'begin update access_generation set value = value + 1 where id = 1; end',
              )
              .execute(db);
          }
        }
      } else {
        await sql`create function move_access_generation() returns trigger language plpgsql as $$
          begin update access_generation set value = value + 1 where id = 1; return null; end $$`.execute(db);
        for (const [table, columns] of accessTables) {
          const update = columns ? `update of ${columns.join(', ')}` : 'update';
          await sql
            .raw(
              `create trigger ${table}_moves_access_generation after insert or ${update} or delete on ${table} ` +
                'for each statement execute function move_access_generation()',
            )
            .execute(db);
        }
      }
    },
  },
  '0004_scoped_access_changes': {
    async up(db: Kysely<unknown>) {
      // Which part of the cached access state a change touches, by scope (generation-cache.ts):
      // the newest generation at which each scope changed. One row per scope, so it never grows
      // with the number of changes, only with the namespaces and credentials that ever changed.
      await db.schema
        .createTable('access_changes')
        .addColumn('scope', 'text', (c) => c.primaryKey())
        .addColumn('generation', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('access_changes_generation')
        .on('access_changes')
        .column('generation')
        .execute();
      const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
      // 0003's triggers moved the generation with no word of what changed; these replace them.
      for (const [table] of accessTables) {
        if (sqlite) {
          for (const event of ['insert', 'update', 'delete']) {
            await sql.raw(`drop trigger ${table}_${event}_moves_access_generation`).execute(db);
          }
        } else {
          await sql.raw(`drop trigger ${table}_moves_access_generation on ${table}`).execute(db);
        }
      }
      if (!sqlite) await sql`drop function move_access_generation()`.execute(db);
      for (const rule of accessChangeRules0004) {
        for (const statement of sqlite ? sqliteAccessTriggers(rule) : postgresAccessTriggers(rule)) {
          await sql.raw(statement).execute(db);
        }
      }
    },
  },
  '0005_admin_token_roles': {
    async up(db: Kysely<unknown>) {
      // What each admin token may do (src/admin/admin-roles.ts). Every token made before roles could
      // do everything, so each becomes `admin`; the default is only for those rows: every insert
      // names its role (the column is not optional in schema.ts), so a forgotten role fails to
      // compile rather than quietly making an admin.
      await db.schema
        .alterTable('admin_tokens')
        .addColumn('role', 'text', (c) => c.notNull().defaultTo('admin'))
        .execute();
    },
  },
  '0006_audit_checkpoints': {
    async up(db: Kysely<unknown>) {
      // Signed checkpoints of the audit head (src/audit/audit-checkpoints.ts): one per seq, so two
      // replicas checkpointing the same head store it once.
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('signature', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0007_credential_base_url': {
    async up(db: Kysely<unknown>) {
      // Where the HTTP proxy forwards a credential's calls (docs/proxy.md). Null: not proxied. A
      // change moves the credential's own access scope (rule `own` of 0004 covers every column).
      await db.schema.alterTable('credentials').addColumn('base_url', 'text').execute();
    },
  },
  '0008_oauth_apps': {
    async up(db: Kysely<unknown>) {
      const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
      await db.schema
        .createTable('oauth_apps')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('client_secret', 'text')
        .addColumn('data_key_id', 'text', (c) => c.notNull())
        .addColumn('issuer', 'text')
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('settings', 'text', (c) => c.notNull())
        .addColumn('agent_connect', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('oauth_apps_namespace_name', ['namespace', 'name'])
        .execute();

      await db.schema
        .createTable('connect_sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('credential_name', 'text', (c) => c.notNull())
        .addColumn('grant_ttl_seconds', 'integer')
        .addColumn('reveal', 'integer', (c) => c.notNull())
        .addColumn('flow', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('state_hash', 'text')
        .addColumn('secrets', 'text')
        .addColumn('device', 'text')
        .addColumn('error_code', 'text')
        .addColumn('credential_id', 'text')
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('connect_sessions_state')
        .on('connect_sessions')
        .column('state_hash')
        .execute();
      await db.schema
        .createIndex('connect_sessions_pending')
        .on('connect_sessions')
        .columns(['namespace', 'agent_id', 'subject', 'app_id'])
        .execute();

      // Per-user credentials: one name may be held by several end users (`subject`), and once with no
      // subject (the shared one). SQLite cannot drop a table constraint, so it rebuilds the table
      // (no foreign key points at it; dropping it drops its triggers, made again below).
      if (sqlite) {
        await sql
          .raw(
            'create table credentials_0008 (id text primary key, namespace text not null, name text not null, ' +
              'type text not null, description text not null, scopes text not null, allowed_hosts text not null, ' +
              'injection text not null, status text not null, expires_at text, subject text, ' +
              'data_key_id text not null, current_version integer not null, created_at text not null, ' +
              'updated_at text not null, base_url text, oauth_app_id text)',
          )
          .execute(db);
        await sql
          .raw(
            'insert into credentials_0008 select id, namespace, name, type, description, scopes, allowed_hosts, ' +
              'injection, status, expires_at, subject, data_key_id, current_version, created_at, updated_at, ' +
              'base_url, null from credentials',
          )
          .execute(db);
        await sql.raw('drop table credentials').execute(db);
        await sql.raw('alter table credentials_0008 rename to credentials').execute(db);
        for (const rule of accessChangeRules0004.filter((r) => r.table === 'credentials')) {
          for (const statement of sqliteAccessTriggers(rule)) await sql.raw(statement).execute(db);
        }
      } else {
        await db.schema.alterTable('credentials').addColumn('oauth_app_id', 'text').execute();
        await sql.raw('alter table credentials drop constraint credentials_namespace_name').execute(db);
      }
      await sql
        .raw(
          "create unique index credentials_namespace_name_subject on credentials (namespace, name, coalesce(subject, ''))",
        )
        .execute(db);
      await db.schema.createIndex('credentials_oauth_app').on('credentials').column('oauth_app_id').execute();
      // Which credential a name means now depends on its subject too: a change of subject moves the
      // namespace scope, as a change of name does (0004's `ns` rule covers insert and delete).
      for (const statement of sqlite
        ? sqliteAccessTriggers(subjectRule0008)
        : postgresAccessTriggers(subjectRule0008)) {
        await sql.raw(statement).execute(db);
      }
    },
  },
  '0009_oauth_refresh': {
    async up(db: Kysely<unknown>) {
      // When each OAuth credential is refreshed next and who is refreshing it (src/oauth/refresh/).
      // Bookkeeping only: no access rule watches this table, so a refresh's lease, backoff and
      // schedule never move the access generation (the new secret version it writes moves only its
      // credential's own scope, rule `own` of 0004). `fence` grows with every lease taken: a writer
      // whose lease was taken over finds another fence and writes nothing.
      await db.schema
        .createTable('oauth_refresh_state')
        .addColumn('credential_id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('secret_version', 'integer', (c) => c.notNull())
        .addColumn('access_expires_at', 'text')
        .addColumn('expiry_assumed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_refresh_at', 'text')
        .addColumn('last_refresh_at', 'text')
        .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('last_error', 'text')
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', 'text')
        .addColumn('fence', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // The scheduler reads only what is due: its cost follows the due rows, not the table.
      await db.schema
        .createIndex('oauth_refresh_state_due')
        .on('oauth_refresh_state')
        .column('next_refresh_at')
        .execute();
      // Credentials waiting for a person (`needs_reauth`) are found without reading the others.
      await db.schema
        .createIndex('oauth_refresh_state_status')
        .on('oauth_refresh_state')
        .column('status')
        .execute();
    },
  },
  '0010_policies': {
    async up(db: Kysely<unknown>) {
      // Named, versioned policies and what they are attached to (src/policy/policy-repo.ts). The
      // current version is the policy row's; versions are only ever added.
      await db.schema
        .createTable('policies')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('current_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('policies_namespace_name', ['namespace', 'name'])
        .execute();
      await db.schema
        .createTable('policy_versions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('policy_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('document', 'text', (c) => c.notNull())
        .addColumn('policy', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addUniqueConstraint('policy_versions_policy_version', ['policy_id', 'version'])
        .execute();
      await db.schema
        .createTable('policy_attachments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('policy_id', 'text', (c) => c.notNull())
        .addColumn('target_kind', 'text', (c) => c.notNull())
        .addColumn('target_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addUniqueConstraint('policy_attachments_target', ['policy_id', 'target_kind', 'target_id'])
        .execute();
      await db.schema
        .createIndex('policy_attachments_namespace')
        .on('policy_attachments')
        .columns(['namespace', 'created_at', 'id'])
        .execute();
      // A policy change, a new version or an attach or detach decides the next request on every
      // replica, like a grant does: each moves the access generation and the namespace's policy scope.
      const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
      for (const rule of accessChangeRules0010) {
        for (const statement of sqlite ? sqliteAccessTriggers(rule) : postgresAccessTriggers(rule)) {
          await sql.raw(statement).execute(db);
        }
      }
    },
  },
  '0011_counters_events': {
    async up(db: Kysely<unknown>) {
      // Exact counters for rate limits and usage caps (src/policy/store-counters.ts): one row per key
      // and window bucket, locked while a request is counted. No trigger: counting a use must never
      // move the access generation (a counter is not access state, and moving it would empty the
      // caches revocation relies on at every request).
      await db.schema
        .createTable('counter_buckets')
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('bucket', 'text', (c) => c.notNull())
        .addColumn('count', 'integer', (c) => c.notNull())
        .addColumn('max_count', 'integer', (c) => c.notNull())
        .addColumn('window_spec', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addPrimaryKeyConstraint('counter_buckets_pk', ['key', 'bucket'])
        .execute();
      await db.schema
        .createIndex('counter_buckets_expires')
        .on('counter_buckets')
        .column('expires_at')
        .execute();
      // A sliding window's counted instants (the bucket row `sliding` is its lock).
      await db.schema
        .createTable('counter_hits')
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('at_ms', 'bigint', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('counter_hits_pk', ['key', 'at_ms', 'id'])
        .execute();
      await db.schema.createIndex('counter_hits_at').on('counter_hits').column('at_ms').execute();

      // Outbound events waiting for delivery (src/events/event-outbox.ts). Written in the transaction
      // of the change they announce; deleted once delivered or given up on (the audit log keeps the
      // latter). `payload` is the exact body every attempt sends, so the signature covers the same bytes.
      await db.schema
        .createTable('event_outbox')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('last_error', 'text')
        .execute();
      await db.schema
        .createIndex('event_outbox_due')
        .on('event_outbox')
        .columns(['next_attempt_at', 'id'])
        .execute();
    },
  },
  '0012_approvals': {
    async up(db: Kysely<unknown>) {
      // Human approvals (src/approvals/). Neither table decides access through the generation cache:
      // an approval is read straight from the store on each request an `approval` rule covers, and
      // using or deciding one must not empty the caches revocation relies on, so no access trigger.
      await db.schema
        .createTable('approvals')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('agent_name', 'text', (c) => c.notNull())
        .addColumn('credential_id', 'text', (c) => c.notNull())
        .addColumn('credential_name', 'text', (c) => c.notNull())
        .addColumn('end_user', 'text')
        .addColumn('policy_id', 'text', (c) => c.notNull())
        .addColumn('policy_name', 'text', (c) => c.notNull())
        .addColumn('rule_index', 'integer', (c) => c.notNull())
        .addColumn('approvers', 'text', (c) => c.notNull())
        .addColumn('covers_seconds', 'integer')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('requested_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text')
        .addColumn('client_ip', 'text')
        .addColumn('decided_at', 'text')
        .addColumn('decided_by', 'text')
        .addColumn('decided_via', 'text')
        .addColumn('reason', 'text')
        .addColumn('covers_until', 'text')
        .addColumn('used_at', 'text')
        .execute();
      // At most one pending approval per agent × credential × rule: a second parked request reuses it,
      // whichever replica it reached (the insert that loses the race finds the winner's row).
      await sql`create unique index approvals_one_pending on approvals
        (namespace, agent_id, credential_id, policy_id, rule_index) where state = 'pending'`.execute(db);
      await db.schema
        .createIndex('approvals_lookup')
        .on('approvals')
        .columns(['namespace', 'agent_id', 'credential_id', 'policy_id', 'rule_index', 'state'])
        .execute();
      await db.schema.createIndex('approvals_due').on('approvals').columns(['state', 'expires_at']).execute();
      // Browsers that subscribed to Web Push on the approval page, each for the approver (admin token
      // name) who subscribed it. The endpoint and keys are the push service's, not secrets of ours.
      await db.schema
        .createTable('approval_push_subscriptions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('approver', 'text', (c) => c.notNull())
        .addColumn('endpoint', 'text', (c) => c.notNull().unique())
        .addColumn('p256dh', 'text', (c) => c.notNull())
        .addColumn('auth', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0013_mcp_proxies': {
    async up(db: Kysely<unknown>) {
      // MCP proxies (src/mcp-proxy/): an upstream MCP server bound to a credential, reached by agents
      // with proxy keys. Proxies, their keys and the accepted tool definitions decide access, so
      // their changes move the access generation (accessChangeRules0013); sessions are bookkeeping
      // and move nothing.
      await db.schema
        .createTable('mcp_proxies')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('transport', 'text', (c) => c.notNull())
        .addColumn('url', 'text')
        .addColumn('command', 'text')
        .addColumn('args', 'text', (c) => c.notNull())
        .addColumn('cwd', 'text')
        .addColumn('credential_name', 'text', (c) => c.notNull())
        .addColumn('per_user', 'integer', (c) => c.notNull())
        .addColumn('injections', 'text', (c) => c.notNull())
        .addColumn('allow_tools', 'text', (c) => c.notNull())
        .addColumn('deny_tools', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('mcp_proxies_namespace_name', ['namespace', 'name'])
        .execute();

      await db.schema
        .createTable('mcp_proxy_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('proxy_id', 'text', (c) => c.notNull())
        .addColumn('agent_id', 'text', (c) => c.notNull())
        .addColumn('end_user', 'text')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('mcp_proxy_keys_proxy').on('mcp_proxy_keys').column('proxy_id').execute();
      await db.schema.createIndex('mcp_proxy_keys_agent').on('mcp_proxy_keys').column('agent_id').execute();

      // Pinned tool definitions: `accepted` is what agents see; `observed` is what the upstream last
      // announced when it differs (withheld until an admin accepts it). Only `accepted` decides.
      await db.schema
        .createTable('mcp_proxy_tools')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('proxy_id', 'text', (c) => c.notNull())
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('accepted', 'text')
        .addColumn('observed', 'text')
        .addColumn('observed_at', 'text')
        .addColumn('accepted_at', 'text')
        .addUniqueConstraint('mcp_proxy_tools_proxy_tool', ['proxy_id', 'tool'])
        .execute();

      // Agent sessions (older MCP revisions' `Mcp-Session-Id`), so any replica can continue one. The
      // id is stored hashed: it is a handle, never authentication, but it is not shown either.
      await db.schema
        .createTable('mcp_sessions')
        .addColumn('id_hash', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('proxy_id', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('mcp_sessions_seen').on('mcp_sessions').column('last_seen_at').execute();

      const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
      for (const rule of accessChangeRules0013) {
        for (const statement of sqlite ? sqliteAccessTriggers(rule) : postgresAccessTriggers(rule)) {
          await sql.raw(statement).execute(db);
        }
      }
    },
  },
  '0014_device_polls': {
    async up(db: Kysely<unknown>) {
      // Device-flow polls that outlive a process (src/oauth/device-poller.ts): when each pending
      // device code is polled next, and a lease so that with several replicas one process at a time
      // polls it. Bookkeeping only: no access rule watches this table, so a poll never moves the
      // access generation. The device code stays sealed in connect_sessions.secrets.
      await db.schema
        .createTable('device_polls')
        .addColumn('session_id', 'text', (c) => c.primaryKey())
        .addColumn('namespace', 'text', (c) => c.notNull())
        .addColumn('interval_seconds', 'integer', (c) => c.notNull())
        .addColumn('next_poll_at', 'text', (c) => c.notNull())
        .addColumn('polls', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', 'text')
        .addColumn('fence', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('device_polls_due').on('device_polls').column('next_poll_at').execute();
    },
  },
  '0015_refresh_kinds': {
    async up(db: Kysely<unknown>) {
      // Client-credentials credentials are renewed by the refresh scheduler (a new grant instead of
      // a refresh-token grant), which tells them apart by the connection that made them.
      await db.schema
        .createIndex('connect_sessions_credential')
        .on('connect_sessions')
        .column('credential_id')
        .execute();
      const clientCredentials = sql`(select credential_id from connect_sessions
        where flow = 'client_credentials' and credential_id is not null)`;
      // Until now they were adopted as unmanaged (no refresh token) and renewed elsewhere: start
      // them over, so the scheduler adopts them afresh and renews them by due time.
      await sql`delete from oauth_refresh_state
        where status = 'unmanaged' and credential_id in ${clientCredentials}`.execute(db);
      // They carried their first token's expiry as the credential's own, which would refuse them
      // (`credential_expired`) before the renewal on retrieval could run.
      await sql`update credentials set expires_at = null
        where expires_at is not null and id in ${clientCredentials}`.execute(db);
    },
  },
};

/**
 * One rule of migration 0004: on a change to `table` (an update only when one of `columns` is set
 * and, where `changed` is given, one of those columns differs between old and new), move the access
 * generation and record, for the old row and the new one, the scopes `scopes(row)` names.
 */
interface AccessChangeRule {
  name: string;
  table: string;
  events: readonly ('insert' | 'update' | 'delete')[];
  columns?: readonly string[];
  changed?: readonly string[];
  /** SQL text over the row's alias (`old`/`new` in SQLite, the transition tables' in PostgreSQL). */
  scopes: (row: string) => string[];
}

const allEvents = ['insert', 'update', 'delete'] as const;
const agentKeyColumns = [
  'id',
  'namespace',
  'agent_id',
  'name',
  'key_hash',
  'created_at',
  'expires_at',
  'revoked_at',
];

/**
 * What each change to an access table invalidates (migration 0004; frozen with it: a change of
 * rules is a new migration). Scopes: `n:<namespace>` for what revocation reads namespace-wide
 * (agents, their keys, grants, and which credential a name means), `g:<credential id>` for the
 * credential state a grant decision reads (status, expiry), `c:<credential id>` for the credential's
 * own row, secret versions and data key. A new secret version (what a token refresh writes) is only
 * `c:`. An API key's `last_used_at` records nothing; counters live in tables of their own, with no
 * trigger, and move nothing.
 */
export const accessChangeRules0004: readonly AccessChangeRule[] = [
  { name: 'ns', table: 'agents', events: allEvents, scopes: (r) => [`'n:' || ${r}.namespace`] },
  {
    name: 'ns',
    table: 'agent_keys',
    events: allEvents,
    columns: agentKeyColumns,
    scopes: (r) => [`'n:' || ${r}.namespace`],
  },
  { name: 'ns', table: 'grants', events: allEvents, scopes: (r) => [`'n:' || ${r}.namespace`] },
  { name: 'own', table: 'credentials', events: allEvents, scopes: (r) => [`'c:' || ${r}.id`] },
  {
    name: 'ns',
    table: 'credentials',
    events: allEvents,
    changed: ['id', 'namespace', 'name'],
    scopes: (r) => [`'n:' || ${r}.namespace`],
  },
  {
    name: 'state',
    table: 'credentials',
    events: ['update'],
    changed: ['status', 'expires_at'],
    scopes: (r) => [`'g:' || ${r}.id`],
  },
  {
    name: 'own',
    table: 'credential_versions',
    events: allEvents,
    scopes: (r) => [`'c:' || ${r}.credential_id`],
  },
  { name: 'own', table: 'data_keys', events: allEvents, scopes: (r) => [`'c:' || ${r}.credential_id`] },
];

/**
 * Migration 0010: the policy tables, each change recorded under `p:<namespace>` (the policies and
 * attachments the agent path caches per namespace, src/policy/policy-enforcement.ts). Frozen with it.
 */
export const accessChangeRules0010: readonly AccessChangeRule[] = [
  'policies',
  'policy_versions',
  'policy_attachments',
].map((table) => ({
  name: 'ns',
  table,
  events: allEvents,
  scopes: (r: string) => [`'p:' || ${r}.namespace`],
}));

const rowsOf = (event: 'insert' | 'update' | 'delete'): ('old' | 'new')[] =>
  event === 'insert' ? ['new'] : event === 'delete' ? ['old'] : ['old', 'new'];

/** SQLite: a row trigger per event, each statement of its body run for every row changed. */
const sqliteAccessTriggers = (rule: AccessChangeRule): string[] =>
  rule.events.map((event) => {
    const on = event === 'update' && rule.columns ? `update of ${rule.columns.join(', ')}` : event;
    const when =
      event === 'update' && rule.changed
        ? ` when ${rule.changed.map((c) => `old.${c} is not new.${c}`).join(' or ')}`
        : '';
    const records = rowsOf(event).flatMap((row) =>
      rule
        .scopes(row)
        .map(
          (scope) =>
            `insert into access_changes (scope, generation) select ${scope}, value from access_generation where id = 1 ` +
            'on conflict (scope) do update set generation = excluded.generation;',
        ),
    );
    return (
      `create trigger ${rule.table}_${event}_${rule.name}_records_access_change after ${on} on ${rule.table}${when} ` +
      `begin update access_generation set value = value + 1 where id = 1; ${records.join(' ')} end`
    );
  });

/**
 * PostgreSQL: a statement trigger per rule and event, over the statement's transition tables, so a
 * statement that changes many rows (the kill switch) moves the generation once and records each
 * scope once (a row trigger took seconds for 5,000 grants: every row updated the same two rows).
 * Moving the generation takes its row lock until commit, so generations are given out in commit
 * order (a reader that sees one sees every change below it). An update counts, for a rule with
 * `columns` or `changed`, only for rows whose listed columns differ, paired by `id` (a row whose id
 * changed counts on both sides).
 */
const postgresAccessTriggers = (rule: AccessChangeRule): string[] =>
  rule.events.flatMap((event) => {
    const name = `${rule.table}_${event}_${rule.name}_records_access_change`;
    const over = (alias: string) => `unnest(array[${rule.scopes(alias).join(', ')}])`;
    const compared = rule.changed ?? rule.columns;
    let select: string;
    if (event === 'insert') select = `select ${over('n')} from new_rows n`;
    else if (event === 'delete') select = `select ${over('o')} from old_rows o`;
    else if (!compared) {
      select = `select ${over('o')} from old_rows o union all select ${over('n')} from new_rows n`;
    } else {
      const differs = compared.map((c) => `o.${c} is distinct from n.${c}`).join(' or ');
      select =
        `select unnest(array[${[...rule.scopes('o'), ...rule.scopes('n')].join(', ')}]) ` +
        `from old_rows o full join new_rows n on o.id = n.id where o.id is null or n.id is null or ${differs}`;
    }
    const referencing =
      event === 'insert'
        ? 'new table as new_rows'
        : event === 'delete'
          ? 'old table as old_rows'
          : 'old table as old_rows new table as new_rows';
    return [
      `create function ${name}() returns trigger language plpgsql as $$ declare g bigint; changed text[]; begin ` +
        `select array_agg(distinct s) into changed from (${select}) x(s) where s is not null; ` +
        'if changed is null then return null; end if; ' +
        'update access_generation set value = value + 1 where id = 1 returning value into g; ' +
        'insert into access_changes (scope, generation) select unnest(changed), g ' +
        'on conflict (scope) do update set generation = excluded.generation; ' +
        'return null; end $$',
      `create trigger ${name} after ${event} on ${rule.table} referencing ${referencing} ` +
        `for each statement execute function ${name}()`,
    ];
  });

/**
 * The tables whose rows decide what an agent may have (see 0003), with the columns whose update
 * counts when not all do: an API key's `last_used_at`, written once a minute while it is in use, says
 * nothing about access. Migration 0003 created its triggers from this list and 0004 dropped them by
 * it: it stays as it is. What a change invalidates now is `accessChangeRules0004`; a table or column
 * added later needs a migration that adds its trigger (the access cache tests check the rules
 * against the schema).
 */
export const accessTables: [string, string[] | undefined][] = [
  ['agents', undefined],
  [
    'agent_keys',
    ['id', 'namespace', 'agent_id', 'name', 'key_hash', 'created_at', 'expires_at', 'revoked_at'],
  ],
  ['grants', undefined],
  ['credentials', undefined],
  ['credential_versions', undefined],
  ['data_keys', undefined],
];

/**
 * What a change to an MCP proxy table invalidates (migration 0013; frozen with it). A proxy, its keys
 * (all but `last_used_at`) and its accepted tool definitions are read when a proxy key authenticates
 * and on every `tools/call`: each is namespace-wide, like an agent key (`n:<namespace>`), so a revoked
 * proxy key, a removed proxy or a changed allow list holds on the next request on every replica.
 * An upstream's announced definitions (`observed`) and sessions move nothing.
 */
export const accessChangeRules0013: readonly AccessChangeRule[] = [
  { name: 'ns', table: 'mcp_proxies', events: allEvents, scopes: (r) => [`'n:' || ${r}.namespace`] },
  {
    name: 'ns',
    table: 'mcp_proxy_keys',
    events: allEvents,
    columns: [
      'id',
      'namespace',
      'proxy_id',
      'agent_id',
      'end_user',
      'name',
      'key_hash',
      'created_at',
      'expires_at',
      'revoked_at',
    ],
    scopes: (r) => [`'n:' || ${r}.namespace`],
  },
  {
    name: 'ns',
    table: 'mcp_proxy_tools',
    events: allEvents,
    columns: ['id', 'namespace', 'proxy_id', 'tool', 'accepted'],
    changed: ['id', 'namespace', 'proxy_id', 'tool', 'accepted'],
    scopes: (r) => [`'n:' || ${r}.namespace`],
  },
];

class InCodeMigrationProvider implements MigrationProvider {
  async getMigrations() {
    return migrations;
  }
}

export const migrateToLatest = async <DB>(db: Kysely<DB>): Promise<string[]> => {
  const migrator = new Migrator({ db: db as Kysely<unknown>, provider: new InCodeMigrationProvider() });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    throw new Error(`database migration failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
};

/** Used by tests and `readyz`: a round trip that proves the database answers. */
export const pingDatabase = async <DB>(db: Kysely<DB>): Promise<void> => {
  await sql`select 1`.execute(db);
};

/** Migration 0008: a credential's subject is part of which credential a name means (per-user credentials). */
const subjectRule0008: AccessChangeRule = {
  name: 'subject',
  table: 'credentials',
  events: ['update'],
  changed: ['subject'],
  scopes: (r) => [`'n:' || ${r}.namespace`],
};
