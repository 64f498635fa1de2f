"use client";

import { Button } from "@/components/ui";

/** Downloads `csv` as a file, made in the browser from data already on the page. */
export function CsvDownload({ csv, filename }: { csv: string; filename: string }) {
  return (
    <Button
      type="button"
      variant="secondary"
      onClick={() => {
        const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
        const a = document.createElement("a");
        a.href = url;
        a.download = filename;
        a.click();
        URL.revokeObjectURL(url);
      }}
    >
      Export CSV
    </Button>
  );
}
