import Link from "next/link";

export default function NotFound() {
  return (
    <main className="mx-auto flex min-h-screen max-w-md flex-col justify-center gap-3 px-4">
      <h1 className="text-2xl font-semibold">Not found</h1>
      <p className="text-slate-600">There is nothing at this address.</p>
      <Link href="/users" className="text-indigo-700 hover:underline">
        Back to users
      </Link>
    </main>
  );
}
