"""The two pieces of markdown the report is made of besides prose."""


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(out)


def fmt(value, spec=".1f", missing="—"):
    """A figure, or a dash where there is none."""
    if value is None:
        return missing
    return format(value, spec)
