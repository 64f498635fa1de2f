import { cleanup, render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";

// The server action, as the form sees it: what it answers decides what the form shows.
const createUser = vi.fn();
vi.mock("@/app/(admin)/actions", () => ({ createUser: (...args: unknown[]) => createUser(...args) }));

const { CreateUserForm } = await import("@/app/(admin)/users/create-user");

afterEach(() => {
  cleanup();
  createUser.mockReset();
});

describe("the new-user form", () => {
  it("shows an error next to the field the answer names, and keeps what was typed", async () => {
    createUser.mockResolvedValue({
      fieldErrors: { email: "a user with this email already exists" },
      values: { name: "Ada", email: "ada@example.com" },
      at: 1,
    });
    const user = userEvent.setup();
    render(<CreateUserForm />);
    await user.type(screen.getByLabelText("Name"), "Ada");
    await user.type(screen.getByLabelText("Email"), "ada@example.com");
    await user.click(screen.getByRole("button", { name: "Create user" }));

    // The form is drawn anew with the answer: look the field up after the answer is shown.
    expect(await screen.findByText("a user with this email already exists")).toBeTruthy();
    const email = screen.getByLabelText("Email");
    expect(email.getAttribute("aria-invalid")).toBe("true");
    expect(email.getAttribute("aria-describedby")).toBe("f-email-error");
    expect((email as HTMLInputElement).value).toBe("ada@example.com");
    expect((screen.getByLabelText("Name") as HTMLInputElement).value).toBe("Ada");
    const sent = createUser.mock.calls[0]?.[1] as FormData;
    expect(sent.get("email")).toBe("ada@example.com");
  });

  it("shows an error that names no field above the form", async () => {
    createUser.mockResolvedValue({ error: "The admin API cannot be reached. Is ccp-admin-server running?", at: 2 });
    const user = userEvent.setup();
    render(<CreateUserForm />);
    await user.click(screen.getByRole("button", { name: "Create user" }));
    expect((await screen.findByRole("alert")).textContent).toContain("cannot be reached");
  });
});
