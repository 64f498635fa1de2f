import { cleanup, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KeyReveal, claudeCodeLines } from "@/components/key-reveal";

afterEach(cleanup);

const KEY = "ccp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd";

describe("the key-reveal dialog", () => {
  it("shows the key and the lines to paste for Claude Code", () => {
    render(<KeyReveal title="New access key" accessKey={KEY} gatewayUrl="https://gw.example.com/" onClose={() => {}} />);
    expect(screen.getByRole("dialog", { name: "New access key" })).toBeTruthy();
    expect(screen.getByTestId("revealed-key").textContent).toBe(KEY);
    expect(screen.getByTestId("paste-lines").textContent).toBe(
      `export ANTHROPIC_BASE_URL=https://gw.example.com/ak/${KEY}\nexport CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n`,
    );
  });

  it("copies the key, and the lines, to the clipboard", async () => {
    const user = userEvent.setup();
    const writeText = vi.fn().mockResolvedValue(undefined);
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    render(<KeyReveal title="New access key" accessKey={KEY} gatewayUrl="http://localhost:8080" onClose={() => {}} />);
    await user.click(screen.getByRole("button", { name: "Copy key" }));
    expect(writeText).toHaveBeenLastCalledWith(KEY);
    expect(screen.getByRole("button", { name: "Copied" })).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Copy lines" }));
    expect(writeText).toHaveBeenLastCalledWith(claudeCodeLines("http://localhost:8080", KEY));
  });

  it("forgets the key when closed", async () => {
    const user = userEvent.setup();
    const onClose = vi.fn();
    render(<KeyReveal title="New access key" accessKey={KEY} gatewayUrl="http://localhost:8080" onClose={onClose} />);
    await user.click(screen.getByRole("button", { name: "Done" }));
    expect(onClose).toHaveBeenCalledOnce();
    await user.keyboard("{Escape}");
    expect(onClose).toHaveBeenCalledTimes(2);
  });
});
