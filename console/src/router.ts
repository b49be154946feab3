// A small history router: the console's routes live under /console/, and the server answers
// index.html for any of them, so a reload or a shared link lands on the same page.
import { useEffect, useState } from "preact/hooks";

export const BASE = "/console";
const listeners = new Set<(path: string) => void>();

export function currentPath(): string {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "/";
  return path === "" ? "/" : path;
}

export function navigate(to: string, replace = false) {
  const url = BASE + to;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  listeners.forEach((l) => l(currentPath()));
}

export function usePath(): string {
  const [path, setPath] = useState(currentPath());
  useEffect(() => {
    const onPop = () => setPath(currentPath());
    listeners.add(setPath);
    addEventListener("popstate", onPop);
    return () => {
      listeners.delete(setPath);
      removeEventListener("popstate", onPop);
    };
  }, []);
  return path;
}

/** Matches `/o/:org/deployments/:id` against a path; the named segments, or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split("/").filter(Boolean);
  const have = path.split("/").filter(Boolean);
  if (want.length !== have.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(have[i]);
    else if (want[i] !== have[i]) return null;
  }
  return params;
}
