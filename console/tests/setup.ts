// Generous waits for findBy* queries: CI shares two cores with the Rust build and the browser
// tests, and a waited-for answer is an event, not a speed check.
import { configure } from "@testing-library/react";

configure({ asyncUtilTimeout: 10_000 });
