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

/** A labelled value with a copy button; `id` names it for tests (`data-testid`). */
function Copyable({
  id,
  label,
  text,
  copyLabel,
  children,
}: {
  id: string;
  label: string;
  text: string;
  copyLabel: string;
  children: React.ReactNode;
}) {
  return (
    <div role="group" aria-labelledby={`${id}-label`}>
      <p className="mb-1 text-sm font-medium" id={`${id}-label`}>
        {label}
      </p>
      <div data-testid={id}>{children}</div>
      <div className="mt-2">
        <CopyButton text={text} label={copyLabel} />
      </div>
    </div>
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
        <Copyable id="revealed-key" label="Access key" text={accessKey} copyLabel="Copy key">
          <code className="block break-all rounded-md bg-slate-100 p-2 font-mono text-sm">{accessKey}</code>
        </Copyable>
        <Copyable id="paste-lines" label="For Claude Code, in the person's shell" text={lines} copyLabel="Copy lines">
          <pre tabIndex={0} className="whitespace-pre-wrap break-all rounded-md bg-slate-900 p-3 font-mono text-xs text-slate-100">
            {lines}
          </pre>
        </Copyable>
        <div className="flex justify-end">
          <Button type="button" onClick={onClose}>
            Done
          </Button>
        </div>
      </div>
    </Dialog>
  );
}
