import type { Metadata } from "next";
import { Banner } from "@/components/ui";
import { LoginForm } from "./login-form";

export const metadata: Metadata = { title: "Sign in" };

const reasons: Record<string, string> = {
  expired: "Your session has ended. Sign in again.",
  "signed-out": "You are signed out.",
};

export default async function LoginPage({ searchParams }: { searchParams: Promise<{ reason?: string }> }) {
  const { reason } = await searchParams;
  const notice = reason ? reasons[reason] : undefined;
  return (
    <main className="mx-auto flex min-h-screen max-w-sm flex-col justify-center gap-6 px-4">
      <div>
        <p className="text-sm font-medium text-indigo-700">ClaudeCodeProxy</p>
        <h1 className="text-2xl font-semibold">Sign in to the console</h1>
      </div>
      {notice ? <Banner kind="info">{notice}</Banner> : null}
      <LoginForm />
      <p className="text-xs text-slate-500">
        Admins are created with <code className="font-mono">ccp-admin admin create</code>.
      </p>
    </main>
  );
}
