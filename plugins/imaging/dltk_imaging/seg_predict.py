"""``dltk predict`` on a nuclei run: an image file or a folder of images in, instance label
images and a counts table out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dltk.errors import DataError
from dltk.io import atomic_path

from dltk_imaging.options import NucleiPredictOptions
from dltk_imaging.seg_data import SegSample, image_files, read_image, to_grey
from dltk_imaging.seg_models import ensemble_probs
from dltk_imaging.seg_plots import overlay_panel, write_rows


def predict_folder(models: list, input_path: Path, output_path: Path, options: NucleiPredictOptions) -> dict[str, int]:
    """Segment an image file or a folder of images into ``output_path`` (a folder).

    Writes ``<stem>_labels.tif`` (uint16 instance map; or ``.png``) per image and ``counts.csv``
    (``file,nuclei,height,width,error``); unreadable images are skipped, counted and listed in the
    CSV. Every file is written atomically.
    """
    import tifffile
    from tqdm.auto import tqdm

    from dltk.inference import device

    ns = options
    models = [m.to(device()) for m in models]
    files = image_files(input_path)
    if output_path.exists() and not output_path.is_dir():
        raise DataError(output_path, "output must be a folder (label images + counts.csv are written into it)")
    output_path.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    for f in tqdm(files, desc="segmenting", leave=False):
        try:
            image = read_image(f)
            grey = to_grey(image)
        except (DataError, ValueError) as exc:
            skipped.append(f.name)
            rows.append({"file": f.name, "nuclei": "", "height": "", "width": "", "error": str(exc)})
            continue
        labels = models[0].instances(ensemble_probs(models, grey))
        out = output_path / f"{f.stem}_labels.{ns.format}"
        with atomic_path(out) as tmp:
            if ns.format == "tif":
                tifffile.imwrite(tmp, labels.astype(np.uint16), compression="zlib")
            else:
                from PIL import Image

                Image.fromarray(labels.astype(np.uint16)).save(tmp, format="PNG")
        if ns.overlay:
            overlay_panel([SegSample(f.stem, image, None)], [labels], [{"pred_nuclei": int(labels.max())}],
                          output_path / f"{f.stem}_overlay.png")
        rows.append({"file": f.name, "nuclei": int(labels.max()), "height": image.shape[0],
                     "width": image.shape[1], "error": ""})
    write_rows(output_path / "counts.csv", rows)
    if skipped:
        print(f"skipped {len(skipped)} unreadable images (first: {skipped[0]})")
    return {"images": len(files), "segmented": len(files) - len(skipped), "skipped": len(skipped),
            "nuclei": int(sum(r["nuclei"] for r in rows if r["nuclei"] != ""))}
