import { Nav } from "./nav";
import { signOut } from "./actions";
import { adminName, sessionToken, toLogin } from "@/lib/session";

export default async function AdminLayout({ children }: { children: React.ReactNode }) {
  if (!(await sessionToken())) toLogin();
  const name = await adminName();
  return (
    <div className="min-h-screen">
      <header className="border-b border-slate-200 bg-white">
        <div className="mx-auto flex max-w-6xl flex-wrap items-center justify-between gap-3 px-4 py-3">
          <div className="flex flex-wrap items-center gap-4">
            <span className="font-semibold text-indigo-700">ClaudeCodeProxy</span>
            <Nav />
          </div>
          <form action={signOut} className="flex items-center gap-3 text-sm">
            <span className="text-slate-600">
              Signed in as <strong className="text-slate-900">{name ?? "admin"}</strong>
            </span>
            <button type="submit" className="rounded-md border border-slate-300 px-2.5 py-1 hover:bg-slate-100">
              Sign out
            </button>
          </form>
        </div>
      </header>
      <main className="mx-auto max-w-6xl px-4 py-6">{children}</main>
    </div>
  );
}
