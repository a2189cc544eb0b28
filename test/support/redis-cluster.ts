import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';

/** Redis Cluster's node-to-node bus listens on the client port plus this offset. */
const BUS_PORT_OFFSET = 10_000;

export interface IRedisClusterOptions {
  masters?: number;
  replicasPerMaster?: number;
  /**
   * `cluster-node-timeout` (default 2000 ms): how long a silent node takes to be
   * marked failed. A node also drops its bus link to a peer whose pong is late by
   * half of it, losing the Pub/Sub messages on that link: too short a value makes
   * a busy machine lose messages.
   */
  nodeTimeoutMs?: number;
  /** Fail clearly when the cluster is not `ok` on every node within this bound. */
  startTimeoutMs?: number;
}

export interface IClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** For a replica: the id of its master. */
  masterId?: string;
  /** Number of hash slots served (masters only). */
  slots: number;
  failed: boolean;
}

interface INode {
  port: number;
  proc?: Subprocess;
}

async function canListen(port: number): Promise<boolean> {
  try {
    const listener = Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } });
    listener.stop(true);
    return true;
  } catch {
    return false;
  }
}

/** A free port whose cluster bus port (port + 10000) is free too, none of them in `taken`. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.has(port) || taken.has(port + BUS_PORT_OFFSET)) continue;
    if ((await canListen(port)) && (await canListen(port + BUS_PORT_OFFSET))) return port;
  }
  throw new Error('no free port pair for a Redis Cluster node');
}

/** Runs `redis-cli` against one node; resolves with its output (empty when the node is unreachable). */
async function cli(port: number, args: string[], timeoutMs = 2_000): Promise<{ ok: boolean; out: string }> {
  const proc = Bun.spawn(['redis-cli', '-h', '127.0.0.1', '-p', String(port), ...args], {
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  clearTimeout(timer);
  return { ok: code === 0, out };
}

function parseNodes(text: string): IClusterNodeInfo[] {
  const nodes: IClusterNodeInfo[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    if (fields.length < 8) continue;
    const [id, address, flags, masterId] = fields as [string, string, string, string];
    const port = Number(address.split('@')[0]!.split(':').pop());
    let slots = 0;
    for (const range of fields.slice(8)) {
      if (range.startsWith('[')) continue; // a slot being migrated
      const [from, to] = range.split('-').map(Number);
      slots += to === undefined ? 1 : to - from! + 1;
    }
    nodes.push({
      id,
      port,
      role: flags.includes('master') ? 'master' : 'replica',
      ...(masterId !== '-' ? { masterId } : {}),
      slots,
      failed: flags.includes('fail') && !flags.includes('fail?'),
    });
  }
  return nodes;
}

/**
 * A real local Redis Cluster owned by a test (default: 3 masters with one
 * replica each) on free ports of 127.0.0.1, with its config files in a temp dir.
 * A master can be SIGKILLed and its replica's promotion awaited. Every process
 * and the temp dir are removed by `stop()`, and the processes are killed on
 * process exit too.
 */
export class RedisCluster {
  private readonly nodes: INode[];
  private stopped = false;

  private constructor(
    ports: number[],
    readonly dir: string,
    private readonly nodeTimeoutMs: number,
    private readonly masterCount: number,
  ) {
    this.nodes = ports.map((port) => ({ port }));
  }

  /** Every node's port (masters and replicas), as seed nodes for a cluster client. */
  get seeds(): Array<{ host: string; port: number }> {
    return this.nodes.map(({ port }) => ({ host: '127.0.0.1', port }));
  }

  /** Ports of the nodes whose process is still running. */
  get livePorts(): number[] {
    return this.nodes.filter((n) => n.proc && n.proc.exitCode === null && !n.proc.killed).map((n) => n.port);
  }

  static async start(opts: IRedisClusterOptions = {}): Promise<RedisCluster> {
    const masters = opts.masters ?? 3;
    const replicas = opts.replicasPerMaster ?? 1;
    const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
    const taken = new Set<number>();
    const ports: number[] = [];
    for (let i = 0; i < masters * (replicas + 1); i++) {
      const port = await freeClusterPort(taken);
      ports.push(port);
      taken.add(port).add(port + BUS_PORT_OFFSET);
    }
    const cluster = new RedisCluster(
      ports,
      mkdtempSync(join(tmpdir(), 'roomcast-cluster-')),
      opts.nodeTimeoutMs ?? 2_000,
      masters,
    );
    live.add(cluster);
    const deadline = Date.now() + startTimeoutMs;
    try {
      for (const node of cluster.nodes) cluster.spawn(node);
      for (const node of cluster.nodes) await cluster.waitFor(() => cli(node.port, ['ping']), deadline);
      const create = await cli(
        ports[0]!,
        [
          '--cluster',
          'create',
          ...ports.map((p) => `127.0.0.1:${p}`),
          '--cluster-replicas',
          String(replicas),
          '--cluster-yes',
        ],
        Math.max(1_000, deadline - Date.now()),
      );
      if (!create.ok) throw new Error(`redis-cli --cluster create failed:\n${create.out}`);
      await cluster.waitUntilHealthy(deadline);
    } catch (error) {
      await cluster.stop();
      throw new Error(
        `Redis Cluster did not start within ${startTimeoutMs}ms: ${error instanceof Error ? error.message : error}`,
      );
    }
    return cluster;
  }

  /** The cluster as one node currently sees it. */
  async topology(port = this.livePorts[0]!): Promise<IClusterNodeInfo[]> {
    const { ok, out } = await cli(port, ['cluster', 'nodes']);
    return ok ? parseNodes(out) : [];
  }

  /** Port of the master that serves `key`'s hash slot. */
  async masterForKey(key: string): Promise<number> {
    const port = this.livePorts[0]!;
    const slot = Number((await cli(port, ['cluster', 'keyslot', key])).out.trim());
    const shards = (await cli(port, ['cluster', 'slots'])).out;
    // `redis-cli cluster slots` prints each range as: start, end, then ip/port/id per node.
    const lines = shards.split('\n').map((l) => l.trim());
    for (let i = 0; i + 3 < lines.length; i++) {
      const start = Number(lines[i]);
      const end = Number(lines[i + 1]);
      if (Number.isInteger(start) && Number.isInteger(end) && slot >= start && slot <= end) {
        const port = Number(lines[i + 3]);
        if (Number.isInteger(port) && port > 0) return port;
      }
    }
    throw new Error(`no master found for slot ${slot}`);
  }

  /**
   * Resolves once every live node says `cluster_state:ok` with all 16384 slots
   * assigned and ok, and sees the roles settled: as many masters serving slots
   * as the cluster was made with, and every other node it does not consider
   * failed as a replica (right after `--cluster create`, and after a failover,
   * a node's view of who replicates whom lags behind its slot map).
   */
  async waitUntilHealthy(deadline = Date.now() + 20_000): Promise<void> {
    await this.waitFor(async () => {
      for (const port of this.livePorts) {
        const { ok, out } = await cli(port, ['cluster', 'info']);
        if (
          !ok ||
          !out.includes('cluster_state:ok') ||
          !out.includes('cluster_slots_assigned:16384') ||
          !out.includes('cluster_slots_ok:16384')
        ) {
          return { ok: false, out };
        }
        const view = (await this.topology(port)).filter((n) => !n.failed);
        const serving = view.filter((n) => n.role === 'master' && n.slots > 0).length;
        const idle = view.filter((n) => n.role === 'master' && n.slots === 0).length;
        if (serving !== this.masterCount || idle > 0) {
          return { ok: false, out: `node ${port} sees ${serving} masters serving slots, ${idle} idle` };
        }
      }
      return { ok: true, out: '' };
    }, deadline);
  }

  /** SIGKILLs the master on `port` (like a crash); returns the ports of its replicas. */
  async killMaster(port: number): Promise<{ replicas: number[] }> {
    const topology = await this.topology(port);
    const master = topology.find((n) => n.port === port);
    if (master?.role !== 'master') throw new Error(`node ${port} is not a master`);
    const replicas = topology.filter((n) => n.masterId === master.id).map((n) => n.port);
    await this.kill(port);
    return { replicas };
  }

  /**
   * Resolves once one of `replicas` is a master serving slots and every live node
   * is healthy again; returns the promoted port and the time it took from `since`.
   */
  async waitForPromotion(
    replicas: number[],
    since: number,
    timeoutMs = 15_000,
  ): Promise<{ promoted: number; ms: number }> {
    let promoted = 0;
    const deadline = since + timeoutMs;
    await this.waitFor(async () => {
      for (const port of replicas) {
        const self = (await this.topology(port)).find((n) => n.port === port);
        if (self?.role === 'master' && self.slots > 0) {
          promoted = port;
          return { ok: true, out: '' };
        }
      }
      return { ok: false, out: 'no replica promoted yet' };
    }, deadline);
    await this.waitUntilHealthy(deadline);
    return { promoted, ms: Date.now() - since };
  }

  /** SIGKILLs one node and waits for it to exit. */
  async kill(port: number): Promise<void> {
    const node = this.nodes.find((n) => n.port === port);
    const proc = node?.proc;
    if (!node || !proc) return;
    node.proc = undefined;
    proc.kill('SIGKILL');
    await proc.exited;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.nodes.map((n) => this.kill(n.port)));
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  /** Synchronous clean-up for process exit. */
  killNow(): void {
    for (const node of this.nodes) node.proc?.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private spawn(node: INode): void {
    node.proc = Bun.spawn(
      [
        'redis-server',
        '--port',
        String(node.port),
        '--bind',
        '127.0.0.1',
        '--protected-mode',
        'no',
        '--dir',
        this.dir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${node.port}.conf`,
        '--cluster-node-timeout',
        String(this.nodeTimeoutMs),
        // A replica may take over however long its master was silent: the tests
        // kill masters, and stale data does not matter for Pub/Sub.
        '--cluster-replica-validity-factor',
        '0',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdout: 'ignore', stderr: 'inherit' },
    );
  }

  /** Retries `check` every 50 ms until it reports ok; throws with its last output past `deadline`. */
  private async waitFor(check: () => Promise<{ ok: boolean; out: string }>, deadline: number): Promise<void> {
    let last = '';
    while (Date.now() < deadline) {
      const result = await check();
      if (result.ok) return;
      last = result.out;
      await Bun.sleep(50);
    }
    throw new Error(`timed out; last answer: ${last.trim().slice(0, 500)}`);
  }
}

const live = new Set<RedisCluster>();
process.on('exit', () => {
  for (const cluster of live) cluster.killNow();
});
