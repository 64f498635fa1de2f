"use client";
// Shows a new access key once, with what a person pastes into their shell for Claude Code.
// The key lives in this component's memory only: closing the dialog forgets it.
import { useState } from "react";
import { Dialog } from "./dialog";
import { Button } from "./ui";

export function claudeCodeLines(gatewayUrl: string, key: string): string {
  const base = gatewayUrl.replace(/\/+$/, "");
  return `export ANTHROPIC_BASE_URL=${base}/ak/${key}\nexport CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n`;
}

function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <Button
      type="button"
      variant="secondary"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setCopied(true);
        } catch {
          setCopied(false);
        }
      }}
    >
      {copied ? "Copied" : label}
    </Button>
  );
}

export function KeyReveal({
  title,
  accessKey,
  gatewayUrl,
  onClose,
}: {
  title: string;
  accessKey: string;
  gatewayUrl: string;
  onClose: () => void;
}) {
  const lines = claudeCodeLines(gatewayUrl, accessKey);
  return (
    <Dialog
      open
      onOpenChange={(open) => (open ? undefined : onClose())}
      title={title}
      description="Copy it now: it is shown only once and stored nowhere in readable form."
    >
      <div className="flex flex-col gap-4">
        <div>
          <p className="mb-1 text-sm font-medium" id="revealed-key-label">
            Access key
          </p>
          <code
            aria-labelledby="revealed-key-label"
            data-testid="revealed-key"
            className="block break-all rounded-md bg-slate-100 p-2 font-mono text-sm"
          >
            {accessKey}
          </code>
          <div className="mt-2">
            <CopyButton text={accessKey} label="Copy key" />
          </div>
        </div>
        <div>
          <p className="mb-1 text-sm font-medium" id="paste-lines-label">
            For Claude Code, in the person&apos;s shell
          </p>
          <pre
            tabIndex={0}
            aria-labelledby="paste-lines-label"
            data-testid="paste-lines"
            className="whitespace-pre-wrap break-all rounded-md bg-slate-900 p-3 font-mono text-xs text-slate-100"
          >
            {lines}
          </pre>
          <div className="mt-2">
            <CopyButton text={lines} label="Copy lines" />
          </div>
        </div>
        <div className="flex justify-end">
          <Button type="button" onClick={onClose}>
            Done
          </Button>
        </div>
      </div>
    </Dialog>
  );
}
