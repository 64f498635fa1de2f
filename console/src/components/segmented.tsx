"use client";
// A row of mutually exclusive choices (what a chart shows), as a labelled radio group.

export function Segmented<T extends string>({
  label,
  options,
  value,
  onChange,
}: {
  label: string;
  options: { value: T; label: string }[];
  value: T;
  onChange: (value: T) => void;
}) {
  return (
    <div role="radiogroup" aria-label={label} className="mb-3 flex flex-wrap gap-1">
      {options.map((o) => (
        <button
          key={o.value}
          type="button"
          role="radio"
          aria-checked={value === o.value}
          onClick={() => onChange(o.value)}
          className={`rounded-md px-3 py-1 text-sm font-medium ${value === o.value ? "bg-indigo-600 text-white" : "border border-slate-300 bg-white text-slate-700"}`}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}
