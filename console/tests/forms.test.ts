import { describe, expect, it } from "vitest";
import { ApiError } from "@/lib/api";
import { formError } from "@/lib/load";

describe("API errors on forms", () => {
  it("puts a 409 next to the field it names", () => {
    const state = formError(new ApiError(409, "conflict_error", "a user with this email already exists"), ["email", "name"]);
    expect(state.fieldErrors).toEqual({ email: "a user with this email already exists" });
    expect(state.error).toBeUndefined();
  });

  it("puts a 422 on a field named with underscores in the API's words", () => {
    const state = formError(new ApiError(422, "invalid_request_error", "bedrock model id is not valid"), ["anthropic_model", "bedrock_model_id"]);
    expect(state.fieldErrors).toEqual({ bedrock_model_id: "bedrock model id is not valid" });
  });

  it("shows other errors above the form", () => {
    expect(formError(new ApiError(0, "unreachable", "The admin API cannot be reached.")).error).toBe("The admin API cannot be reached.");
    expect(formError(new ApiError(422, "invalid_request_error", "nothing to change"), ["email"]).error).toBe("nothing to change");
  });

  it("does not swallow what is not an API error", () => {
    expect(() => formError(new TypeError("bug"))).toThrow("bug");
  });
});
