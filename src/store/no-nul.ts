import {
  OperationNodeTransformer,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type PrimitiveValueListNode,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
  type ValueNode,
} from 'kysely';

/**
 * U+0000 → U+FFFD in a string; anything else unchanged. PostgreSQL refuses U+0000 in text; the
 * audit log applies the same replacement in every store (src/store/audit.ts).
 */
export function withoutNul<T>(v: T): T {
  return typeof v === 'string' && v.indexOf('\0') >= 0 ? (v.replace(/\0/g, '\uFFFD') as T) : v;
}
const clean = withoutNul<unknown>;

class NulTransformer extends OperationNodeTransformer {
  protected override transformValue(node: ValueNode): ValueNode {
    const v = clean(node.value);
    return v === node.value ? node : { ...node, value: v };
  }

  protected override transformPrimitiveValueList(node: PrimitiveValueListNode): PrimitiveValueListNode {
    return node.values.some((v) => typeof v === 'string' && v.indexOf('\0') >= 0) ? { ...node, values: node.values.map(clean) } : node;
  }
}

/**
 * harden: PostgreSQL refuses U+0000 in text ("invalid byte sequence for encoding UTF8: 0x00"),
 * so a NUL in anything a client sends (a username, a client id, a search term) made the query
 * fail and the request answer 500. This plugin replaces U+0000 with U+FFFD in every string
 * parameter: a lookup then simply finds nothing (no stored value holds a NUL), and a write stores
 * the replacement character, as the audit log does (src/store/audit.ts).
 */
export class NoNulPlugin implements KyselyPlugin {
  private readonly transformer = new NulTransformer();

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.transformer.transformNode(args.node);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}
