import { get } from "./api";
import type { Cluster, Deployment } from "./types";

type Page = { items: Deployment[]; next_cursor: string | null };

/** Every deployment of `org` with `status` (a few pages at most: a console shows what fits). */
export async function listDeployments(org: string, status: string, maxPages = 5): Promise<Deployment[]> {
  const all: Deployment[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < maxPages; i++) {
    const q: string = `/deployments?organization_id=${org}&status=${status}&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const page: Page = await get<Page>(q);
    all.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return all;
}

export async function clusterNames(org: string): Promise<Map<string, string>> {
  const clusters = await get<Cluster[]>(`/clusters?organization_id=${org}`);
  return new Map(clusters.map((c) => [c.id, c.name]));
}

type FeedItem = { type: string; deployment: { id: string }; related_deployment_id: string | null };
type Preemptions = { cursor: string | null; victims: Map<string, Set<string>>; busy: Promise<void> };
const preemptions = new Map<string, Preemptions>();

/** The deployments that `preemptor` evicted. A victim's own `preempted` event names its
 * preemptor, so the other direction is read from the organization's feed, once, and then only
 * its new events on each later call. */
export function victimsOf(org: string, preemptor: string): Promise<string[]> {
  let state = preemptions.get(org);
  if (!state) {
    state = { cursor: null, victims: new Map(), busy: Promise.resolve() };
    preemptions.set(org, state);
  }
  const s = state;
  const run = s.busy.then(async () => {
    for (let i = 0; i < 20; i++) {
      const q: string = s.cursor ? `after=${encodeURIComponent(s.cursor)}&limit=500` : "limit=500";
      const page: { items: FeedItem[]; next_cursor: string } = await get(`/organizations/${org}/events?${q}`);
      for (const e of page.items) {
        if (e.type !== "preempted" || !e.related_deployment_id) continue;
        const set = s.victims.get(e.related_deployment_id) ?? new Set<string>();
        set.add(e.deployment.id);
        s.victims.set(e.related_deployment_id, set);
      }
      s.cursor = page.next_cursor;
      if (page.items.length < 500) break;
    }
  });
  s.busy = run.catch(() => undefined);
  return run.then(() => [...(s.victims.get(preemptor) ?? [])]);
}
