import type { Metadata } from "next";
import "./globals.css";

export const metadata: Metadata = {
  title: { default: "ClaudeCodeProxy console", template: "%s · ClaudeCodeProxy" },
  description: "Users, access keys, Bedrock failover and usage of the ClaudeCodeProxy gateway",
  robots: { index: false, follow: false },
};

export default function RootLayout({ children }: { children: React.ReactNode }) {
  return (
    <html lang="en">
      <body className="min-h-screen font-sans">{children}</body>
    </html>
  );
}
