"use client";
// Anything a page did not handle itself: a banner and a retry, never a stack trace.
import { Banner, Button } from "@/components/ui";

export default function PageError({ reset }: { error: Error; reset: () => void }) {
  return (
    <div className="flex flex-col gap-4">
      <Banner>Something went wrong while loading this page. The admin API may be unavailable.</Banner>
      <div>
        <Button type="button" variant="secondary" onClick={reset}>
          Try again
        </Button>
      </div>
    </div>
  );
}
