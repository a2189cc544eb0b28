// Summarizes .cpuprofile files (from `bun bench/run.ts --profile DIR`):
// the functions with the most self time, and the most inclusive time.
//   bun bench/profile-summary.ts DIR/helper-A-*.cpuprofile [--top 25]

export {};

interface INode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface IProfile {
  nodes: INode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const limit = topAt >= 0 ? Number(args[topAt + 1]) : 25;
const files = args.filter((a, i) => a.endsWith('.cpuprofile') && i !== topAt + 1);

for (const file of files) {
  const profile = (await Bun.file(file).json()) as IProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (n: INode) => {
    const where = n.callFrame.url.replace(/^.*\/(src|bench|node_modules)\//, '$1/');
    return `${n.callFrame.functionName || '(anonymous)'} ${where}${where ? `:${n.callFrame.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === '(idle)') return;
    total += us;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const key = label(byId.get(at)!);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  });
  const print = (title: string, map: Map<string, number>) => {
    console.log(`  ${title}`);
    for (const [name, us] of [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
      console.log(
        `    ${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(1).padStart(8)} ms  ${name}`,
      );
    }
  };
  console.log(`${file}: ${(total / 1000).toFixed(1)} ms sampled (idle excluded)`);
  print('self time', self);
  print('inclusive time', inclusive);
}
