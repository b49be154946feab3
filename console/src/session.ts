import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Me, Membership, Role } from "./types";

export type Session = {
  me: Me;
  /** Reads /auth/me again (after creating or joining an organization, or a role change). */
  reloadMe: () => Promise<Me>;
  signOut: () => void;
};

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("no session");
  return s;
}

/** The organization a page is about, with the caller's role in it and what that role allows.
 * This only decides what is shown: the API decides what is allowed. */
export type OrgContext = Membership & { canDeploy: boolean; isAdmin: boolean; tick: number };

export const OrgCtx = createContext<OrgContext | null>(null);

export function useOrg(): OrgContext {
  const o = useContext(OrgCtx);
  if (!o) throw new Error("no organization");
  return o;
}

export const can = (role: Role) => ({ canDeploy: role === "admin" || role === "developer", isAdmin: role === "admin" });
