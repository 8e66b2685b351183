/**
 * The services' dependency graph (`depends`), in one place: the config check (missing
 * services, cycles), the start order, and which services start with the server.
 */
import { SERVICE_NAME_PATTERN } from './schema.js';
import { isRecord, type ConfigIssue } from './issues.js';
import type { LappsConfig, ServiceConfig } from './types.js';

/** The services and their `depends` lists, as far as they are well typed. */
interface DependencyNode {
  index: number;
  name: string;
  depends: string[];
}

/**
 * Missing dependencies and cycles among raw service entries (after the schema pass, so
 * maybe ill-typed: only string names and string `depends` items take part). A cycle is
 * reported once, at the service whose `depends` entry closes it, as `cycle: a -> b -> a`.
 */
export function dependencyIssues(services: unknown[]): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const nodes: DependencyNode[] = [];
  services.forEach((s: unknown, index) => {
    if (!isRecord(s) || typeof s.name !== 'string') return;
    const depends = Array.isArray(s.depends)
      ? s.depends.filter((d): d is string => typeof d === 'string')
      : [];
    nodes.push({ index, name: s.name, depends });
  });
  const byName = new Map<string, DependencyNode>();
  for (const n of nodes) if (!byName.has(n.name)) byName.set(n.name, n);
  for (const n of nodes) {
    n.depends.forEach((d, j) => {
      // A malformed name is reported by the schema already.
      if (!byName.has(d) && new RegExp(SERVICE_NAME_PATTERN).test(d)) {
        issues.push({
          path: `/services/${n.index}/depends/${j}`,
          message: `no service named "${d}"`,
        });
      }
    });
  }
  // Depth-first search in config order; a grey node reached again closes a cycle.
  const state = new Map<string, 'grey' | 'black'>();
  const stack: DependencyNode[] = [];
  const visit = (n: DependencyNode): void => {
    state.set(n.name, 'grey');
    stack.push(n);
    for (const d of n.depends) {
      const next = byName.get(d);
      if (!next) continue;
      const st = state.get(d);
      if (st === 'grey') {
        const from = stack.findIndex((x) => x.name === d);
        const names = stack.slice(from).map((x) => x.name);
        issues.push({
          path: `/services/${n.index}/depends`,
          message: `cycle: ${[...names, d].join(' -> ')}`,
        });
      } else if (st === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(n.name, 'black');
  };
  for (const n of nodes) if (!state.has(n.name)) visit(n);
  return issues;
}

/**
 * The services in the order they must start: every service after the services it
 * `depends` on, and otherwise in config order (a stable topological sort). Stopping asks
 * every service at once. Services with `auto_start: false` are included; the caller decides.
 *
 * @param config a normalised config (normalizeConfig has ruled out missing names and
 *   cycles).
 * @throws Error if `config` has a dependency cycle or a missing dependency anyway.
 */
export function startOrder(config: LappsConfig): ServiceConfig[] {
  const services = config.services;
  const names = new Set(services.map((s) => s.name));
  const started = new Set<string>();
  const order: ServiceConfig[] = [];
  while (order.length < services.length) {
    // The first service in config order whose dependencies have all started.
    const next = services.find(
      (s) => !started.has(s.name) && s.depends.every((d) => started.has(d)),
    );
    if (!next) {
      const stuck = services.filter((s) => !started.has(s.name));
      const missing = stuck.flatMap((s) => s.depends.filter((d) => !names.has(d)));
      throw new Error(
        missing.length > 0
          ? `startOrder: no service named ${missing.map((m) => `"${m}"`).join(', ')}`
          : `startOrder: dependency cycle among ${stuck.map((s) => s.name).join(', ')}`,
      );
    }
    started.add(next.name);
    order.push(next);
  }
  return order;
}

/**
 * Names of the services started with the server: those with auto_start, and everything
 * they depend on (directly or not), whatever its own auto_start says.
 */
export function startedServices(config: LappsConfig): Set<string> {
  const byName = new Map(config.services.map((s) => [s.name, s]));
  const started = new Set<string>();
  const visit = (name: string): void => {
    if (started.has(name)) return;
    started.add(name);
    for (const d of byName.get(name)?.depends ?? []) visit(d);
  };
  for (const s of config.services) if (s.auto_start) visit(s.name);
  return started;
}
