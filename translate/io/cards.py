"""A generator file's description in words, for people: what it translates into what, how it was made."""

from __future__ import annotations


def translation_title(meta: dict) -> str:
    """'photo -> vangogh' from a file's metadata (see translate.io.generator_file.read_metadata)."""
    card = meta.get("card", {})
    source, target = card.get("source", "A"), card.get("target", "B")
    title = f"{source} \u2192 {target}"
    if (source, target) in (("A", "B"), ("B", "A")) and card.get("dataset"):
        title = f"{card['dataset']}: {title}"  # domains without names: the dataset says what they are
    return title


def condition_summary(meta: dict) -> str:
    condition = meta.get("condition", {}) or {}
    kind = condition.get("kind", "none")
    if kind == "label":
        return "a label: " + ", ".join(condition.get("label_names", []))
    if kind == "text":
        words = max(len(condition.get("vocabulary", [])) - 2, 0)  # <pad> and <unk> are no words
        return f"a caption (a vocabulary of {words} words)"
    return "none"


def describe(meta: dict) -> list[str]:
    """The card as short lines: translation, architecture, condition, training, origin, toolkit."""
    card, arch = meta.get("card", {}), meta.get("generator", {})
    model = card.get("model", "?")
    lines = [f"{translation_title(meta)} ({model} {card.get('role', 'G')}, translates {card.get('translates', 'a2b')})"]
    extras = [f"{arch.get('norm', '?')} norm"]
    if arch.get("dropout"):
        extras.append("dropout")
    if arch.get("upsample", "transpose") != "transpose":
        extras.append(f"{arch['upsample']} upsampling")
    if arch.get("condition_dim"):
        extras.append(f"condition dim {arch['condition_dim']}")
    lines.append(f"architecture: {arch.get('name', '?')}, ngf {arch.get('ngf', '?')}, "
                 f"{arch.get('in_channels', 3)}\u2192{arch.get('out_channels', 3)} channels, " + ", ".join(extras))
    lines.append(f"condition: {condition_summary(meta)}")
    trained = []
    if card.get("steps") is not None:
        trained.append(f"{card['steps']} steps")
    if card.get("dataset"):
        trained.append(f"on {card['dataset']}")
    if card.get("size"):
        trained.append(f"at {card['size']} px")
    if card.get("run"):
        trained.append(f"(run {card['run']})")
    if trained:
        lines.append("trained: " + " ".join(trained))
    origin = card.get("origin")
    if origin:
        where = origin.get("url") or origin.get("file", "?")
        digest = origin.get("sha256", "")
        lines.append(f"origin: {where}" + (f" (sha256 {digest[:12]}\u2026)" if digest else ""))
    if card.get("description"):
        lines.append(f"about: {card['description']}")
    if card.get("toolkit_version"):
        lines.append(f"toolkit: translate {card['toolkit_version']}")
    return lines
