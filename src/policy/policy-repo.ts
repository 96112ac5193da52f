import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/schema.js';
import type { Attachment, Policy } from './policy-types.js';

export type Db = Kysely<Database> | Transaction<Database>;

/** What an attachment may point at; `proxy` and `proxy_key` are the MCP proxies (migration 0013). */
export const attachmentKinds = ['agent', 'agent_key', 'grant', 'credential', 'proxy', 'proxy_key'] as const;
export type AttachmentKind = Attachment['kind'];

export interface StoredPolicy {
  id: string;
  namespace: string;
  name: string;
  version: number;
  /** The document as it was given (YAML or JSON text). */
  document: string;
  policy: Policy;
  createdAt: string;
  updatedAt: string;
  /** Who wrote the current version (`admin:<token id>`). */
  updatedBy: string;
}

export interface PolicyVersion {
  version: number;
  document: string;
  policy: Policy;
  createdAt: string;
  createdBy: string;
}

export interface StoredAttachment {
  id: string;
  policyId: string;
  kind: AttachmentKind;
  targetId: string;
  createdAt: string;
  createdBy: string;
}

const currentSelect = (db: Db) =>
  db
    .selectFrom('policies as p')
    .innerJoin('policy_versions as v', (join) =>
      join.onRef('v.policy_id', '=', 'p.id').onRef('v.version', '=', 'p.current_version'),
    )
    .select([
      'p.id',
      'p.namespace',
      'p.name',
      'p.current_version',
      'p.created_at',
      'p.updated_at',
      'v.document',
      'v.policy',
      'v.created_by',
    ]);

type CurrentRow = {
  id: string;
  namespace: string;
  name: string;
  current_version: number;
  created_at: string;
  updated_at: string;
  document: string;
  policy: string;
  created_by: string;
};

const toStored = (row: CurrentRow): StoredPolicy => ({
  id: row.id,
  namespace: row.namespace,
  name: row.name,
  version: Number(row.current_version),
  document: row.document,
  policy: JSON.parse(row.policy) as Policy,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  updatedBy: row.created_by,
});

const toAttachment = (row: {
  id: string;
  policy_id: string;
  target_kind: string;
  target_id: string;
  created_at: string;
  created_by: string;
}): StoredAttachment => ({
  id: row.id,
  policyId: row.policy_id,
  kind: row.target_kind as AttachmentKind,
  targetId: row.target_id,
  createdAt: row.created_at,
  createdBy: row.created_by,
});

/** Rows of policies, their versions and attachments. No rules here: policy-service.ts decides. */
export const policyRepo = {
  async findByName(db: Db, namespace: string, name: string): Promise<StoredPolicy | undefined> {
    const row = await currentSelect(db)
      .where('p.namespace', '=', namespace)
      .where('p.name', '=', name)
      .executeTakeFirst();
    return row ? toStored(row) : undefined;
  },

  async list(db: Db, namespace: string): Promise<StoredPolicy[]> {
    const rows = await currentSelect(db).where('p.namespace', '=', namespace).orderBy('p.name').execute();
    return rows.map(toStored);
  },

  async insertPolicy(
    db: Db,
    row: { id: string; namespace: string; name: string; createdAt: string },
  ): Promise<void> {
    await db
      .insertInto('policies')
      .values({
        id: row.id,
        namespace: row.namespace,
        name: row.name,
        current_version: 1,
        created_at: row.createdAt,
        updated_at: row.createdAt,
      })
      .execute();
  },

  async insertVersion(
    db: Db,
    row: {
      id: string;
      namespace: string;
      policyId: string;
      version: number;
      document: string;
      policy: Policy;
      createdAt: string;
      createdBy: string;
    },
  ): Promise<void> {
    await db
      .insertInto('policy_versions')
      .values({
        id: row.id,
        namespace: row.namespace,
        policy_id: row.policyId,
        version: row.version,
        document: row.document,
        policy: JSON.stringify(row.policy),
        created_at: row.createdAt,
        created_by: row.createdBy,
      })
      .execute();
  },

  /** Moves the current version, only from the one the caller read: false when another update won. */
  async setCurrentVersion(
    db: Db,
    policyId: string,
    from: number,
    to: number,
    updatedAt: string,
  ): Promise<boolean> {
    const result = await db
      .updateTable('policies')
      .set({ current_version: to, updated_at: updatedAt })
      .where('id', '=', policyId)
      .where('current_version', '=', from)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  },

  async versions(db: Db, policyId: string): Promise<PolicyVersion[]> {
    const rows = await db
      .selectFrom('policy_versions')
      .select(['version', 'document', 'policy', 'created_at', 'created_by'])
      .where('policy_id', '=', policyId)
      .orderBy('version', 'desc')
      .execute();
    return rows.map((row) => ({
      version: Number(row.version),
      document: row.document,
      policy: JSON.parse(row.policy) as Policy,
      createdAt: row.created_at,
      createdBy: row.created_by,
    }));
  },

  async deletePolicy(db: Db, policyId: string): Promise<void> {
    await db.deleteFrom('policy_attachments').where('policy_id', '=', policyId).execute();
    await db.deleteFrom('policy_versions').where('policy_id', '=', policyId).execute();
    await db.deleteFrom('policies').where('id', '=', policyId).execute();
  },

  async attachments(db: Db, policyId: string): Promise<StoredAttachment[]> {
    const rows = await db
      .selectFrom('policy_attachments')
      .selectAll()
      .where('policy_id', '=', policyId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    return rows.map(toAttachment);
  },

  async findAttachment(
    db: Db,
    policyId: string,
    kind: AttachmentKind,
    targetId: string,
  ): Promise<StoredAttachment | undefined> {
    const row = await db
      .selectFrom('policy_attachments')
      .selectAll()
      .where('policy_id', '=', policyId)
      .where('target_kind', '=', kind)
      .where('target_id', '=', targetId)
      .executeTakeFirst();
    return row ? toAttachment(row) : undefined;
  },

  async insertAttachment(db: Db, namespace: string, attachment: StoredAttachment): Promise<void> {
    await db
      .insertInto('policy_attachments')
      .values({
        id: attachment.id,
        namespace,
        policy_id: attachment.policyId,
        target_kind: attachment.kind,
        target_id: attachment.targetId,
        created_at: attachment.createdAt,
        created_by: attachment.createdBy,
      })
      .execute();
  },

  async deleteAttachment(db: Db, id: string): Promise<void> {
    await db.deleteFrom('policy_attachments').where('id', '=', id).execute();
  },

  /**
   * Every attachment of the namespace with its policy's current version, in attachment order: what
   * the agent path caches per namespace (policy-enforcement.ts).
   */
  async attachedInNamespace(
    db: Db,
    namespace: string,
  ): Promise<{ attachment: StoredAttachment; policyId: string; name: string; policy: Policy }[]> {
    const rows = await db
      .selectFrom('policy_attachments as a')
      .innerJoin('policies as p', 'p.id', 'a.policy_id')
      .innerJoin('policy_versions as v', (join) =>
        join.onRef('v.policy_id', '=', 'p.id').onRef('v.version', '=', 'p.current_version'),
      )
      .selectAll('a')
      .select(['p.name', 'v.policy'])
      .where('a.namespace', '=', namespace)
      .orderBy('a.created_at')
      .orderBy('a.id')
      .execute();
    return rows.map((row) => ({
      attachment: toAttachment(row),
      policyId: row.policy_id,
      name: row.name,
      policy: JSON.parse(row.policy) as Policy,
    }));
  },
};
