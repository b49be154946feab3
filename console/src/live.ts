// Keeping what is on screen current without a reload. The organization's event feed
// (GET .../events?after=&wait=) wakes us on the next deployment event, within about half a
// second; a poll every 2.5 s covers what is not an event (clusters created or resized, members,
// tokens, deliveries) and the feed being unreachable. Each wake bumps a counter that pages put
// in their data dependencies.
import { useEffect, useState } from "preact/hooks";
import { get } from "./api";

const POLL_MS = 2500;
const FEED_WAIT_S = 20;

type FeedPage = { items: unknown[]; next_cursor: string };

async function endOfFeed(org: string, signal: AbortSignal): Promise<string> {
  let after: string | null = null;
  for (;;) {
    const query: string = after ? `after=${encodeURIComponent(after)}&limit=500` : "limit=500";
    const page: FeedPage = await get<FeedPage>(`/organizations/${org}/events?${query}`, signal);
    if (page.items.length === 0) return page.next_cursor;
    after = page.next_cursor;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function useLive(org: string | undefined): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!org) return;
    const control = new AbortController();
    const bump = () => setTick((t) => t + 1);
    const poll = setInterval(() => {
      if (document.visibilityState === "visible") bump();
    }, POLL_MS);
    (async () => {
      let cursor: string | null = null;
      while (!control.signal.aborted) {
        try {
          if (cursor === null) {
            cursor = await endOfFeed(org, control.signal);
            continue;
          }
          const path: string = `/organizations/${org}/events?after=${encodeURIComponent(cursor)}&wait=${FEED_WAIT_S}&limit=500`;
          const page: FeedPage = await get<FeedPage>(path, control.signal);
          cursor = page.next_cursor;
          if (page.items.length > 0) bump();
        } catch {
          // The poll keeps the page current meanwhile.
          if (!control.signal.aborted) await sleep(POLL_MS);
        }
      }
    })();
    return () => {
      control.abort();
      clearInterval(poll);
    };
  }, [org]);
  return tick;
}

/** The current time, every `ms`: for "waited 3m 12s" that ages on screen. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}
