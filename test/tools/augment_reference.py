#!/usr/bin/python3
"""Reference outputs for test/augment.test.ts, computed with Debian's python3-pil.

Reads one JSON request on stdin:
  {"images": [{"width", "height", "data": base64 RGB}], "cases": [{"image": i, "ops": [op, ...]}]}
and writes {"pil": version, "outputs": [base64 RGB, ...]} on stdout, one output per case (its ops chained).

Ops mirror what timm's data pipeline calls:
  {"op": "timm", "name", "level", "negate", "fill", "resample"}  a RandAugment op at a fixed magnitude
      (timm's LEVEL_TO_ARG, with the random sign forced by "negate", then timm's NAME_TO_OP function)
  {"op": "enhance", "kind": "Brightness"|"Contrast"|"Color"|"Sharpness", "factor"}  ImageEnhance
  {"op": "resized_crop", "box": [top, left, h, w], "size": [w, h], "resample"}  torchvision F.resized_crop
  {"op": "hflip"} / {"op": "vflip"}
"""
import base64
import json
import sys

from PIL import Image, ImageEnhance, ImageOps
import PIL

RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
LEVEL_DENOM = 10.0


def level_to_arg(name, level, negate, translate_pct=0.45):
    sign = (lambda v: -v) if negate else (lambda v: v)
    if name in ("AutoContrast", "Equalize", "Invert"):
        return None
    if name == "Rotate":
        return sign((level / LEVEL_DENOM) * 30.0)
    if name == "Posterize":
        return int((level / LEVEL_DENOM) * 4)
    if name == "PosterizeIncreasing":
        return 4 - int((level / LEVEL_DENOM) * 4)
    if name == "Solarize":
        return int((level / LEVEL_DENOM) * 256)
    if name == "SolarizeIncreasing":
        return 256 - int((level / LEVEL_DENOM) * 256)
    if name == "SolarizeAdd":
        return min(128, int((level / LEVEL_DENOM) * 110))
    if name in ("Color", "Contrast", "Brightness", "Sharpness"):
        return (level / LEVEL_DENOM) * 1.8 + 0.1
    if name.endswith("Increasing"):
        return max(0.1, 1.0 + sign((level / LEVEL_DENOM) * 0.9))
    if name in ("ShearX", "ShearY"):
        return sign((level / LEVEL_DENOM) * 0.3)
    if name in ("TranslateXRel", "TranslateYRel"):
        return sign((level / LEVEL_DENOM) * translate_pct)
    raise ValueError(name)


def timm_op(img, name, arg, fill, resample):
    kw = dict(fillcolor=fill, resample=resample)
    if name == "AutoContrast":
        return ImageOps.autocontrast(img)
    if name == "Equalize":
        return ImageOps.equalize(img)
    if name == "Invert":
        return ImageOps.invert(img)
    if name == "Rotate":
        return img.rotate(arg, **kw)
    if name.startswith("Posterize"):
        return img if arg >= 8 else ImageOps.posterize(img, arg)
    if name.startswith("SolarizeAdd"):
        lut = [min(255, i + arg) if i < 128 else i for i in range(256)]
        return img.point(lut * 3)
    if name.startswith("Solarize"):
        return ImageOps.solarize(img, arg)
    for kind in ("Color", "Contrast", "Brightness", "Sharpness"):
        if name.startswith(kind):
            return getattr(ImageEnhance, kind)(img).enhance(arg)
    if name == "ShearX":
        return img.transform(img.size, Image.AFFINE, (1, arg, 0, 0, 1, 0), **kw)
    if name == "ShearY":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, arg, 1, 0), **kw)
    if name == "TranslateXRel":
        return img.transform(img.size, Image.AFFINE, (1, 0, arg * img.size[0], 0, 1, 0), **kw)
    if name == "TranslateYRel":
        return img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, arg * img.size[1]), **kw)
    raise ValueError(name)


def apply(img, op):
    kind = op["op"]
    if kind == "timm":
        arg = level_to_arg(op["name"], float(op["level"]), op.get("negate", False))
        return timm_op(img, op["name"], arg, tuple(op.get("fill", (128, 128, 128))), RESAMPLE[op.get("resample", "bilinear")])
    if kind == "enhance":
        return getattr(ImageEnhance, op["kind"])(img).enhance(op["factor"])
    if kind == "resized_crop":
        top, left, h, w = op["box"]
        return img.crop((left, top, left + w, top + h)).resize(tuple(op["size"]), RESAMPLE[op["resample"]])
    if kind == "hflip":
        return img.transpose(Image.FLIP_LEFT_RIGHT)
    if kind == "vflip":
        return img.transpose(Image.FLIP_TOP_BOTTOM)
    raise ValueError(kind)


def main():
    req = json.load(sys.stdin)
    images = [Image.frombytes("RGB", (i["width"], i["height"]), base64.b64decode(i["data"])) for i in req["images"]]
    outputs = []
    for case in req["cases"]:
        img = images[case["image"]]
        for op in case["ops"]:
            img = apply(img, op)
        assert img.mode == "RGB"
        outputs.append({"width": img.size[0], "height": img.size[1], "data": base64.b64encode(img.tobytes()).decode()})
    json.dump({"pil": PIL.__version__, "outputs": outputs}, sys.stdout)


if __name__ == "__main__":
    main()
