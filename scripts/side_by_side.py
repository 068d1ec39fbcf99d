"""Put two images side by side with a gap and a caption above each: `python scripts/side_by_side.py
real.png generated.png out.png` (the demo's last picture: the training images beside the model's)."""

from __future__ import annotations

import sys

from PIL import Image, ImageDraw

GAP, CAPTION = 16, 20  # pixels between the images, height of the caption band


def side_by_side(left: Image.Image, right: Image.Image, captions: tuple[str, str]) -> Image.Image:
    """left | gap | right on white, each under its caption; the right image is scaled (nearest) to the left's
    height."""
    left, right = left.convert("RGB"), right.convert("RGB")
    if right.height != left.height:
        right = right.resize((round(right.width * left.height / right.height), left.height), Image.NEAREST)
    out = Image.new("RGB", (left.width + GAP + right.width, CAPTION + left.height), "white")
    out.paste(left, (0, CAPTION))
    out.paste(right, (left.width + GAP, CAPTION))
    draw = ImageDraw.Draw(out)
    for x, text in ((0, captions[0]), (left.width + GAP, captions[1])):
        draw.text((x + 2, 4), text, fill="black")
    return out


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        sys.exit("usage: python scripts/side_by_side.py REAL.png GENERATED.png OUT.png")
    side_by_side(Image.open(argv[0]), Image.open(argv[1]), ("real", "generated")).save(argv[2])
    print(f"wrote {argv[2]}")


if __name__ == "__main__":
    main(sys.argv[1:])
