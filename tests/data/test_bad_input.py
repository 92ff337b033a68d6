"""Bad input: one test a case, each on a small folder it makes; the outcomes are the table in docs/data.md."""

import io
import os
import subprocess

import numpy as np
import pytest
import yaml
from PIL import Image

from graft.data import decode as images
from graft.data import manifest, validate
from graft.data.annotate import Checks
from graft.errors import ValidationFailed
from tests.helpers import BIN, env, params, raw_params

CLASSES = ("cat", "dog")
RULES = images.Rules.of(params().validate)


def good_folder(root, *, classes=CLASSES, n=6):
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            low = Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8))
            low.resize((24, 24), Image.Resampling.BICUBIC).save(root / cls / f"{cls}-{i}.png")
    return root


def png_bytes(array, fmt="PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def pixels(shape=(30, 20), seed=1):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def run(tmp_path, **settings):
    """The shipped data gate on ``tmp_path/data``, a user's folder of cats and dogs, ``settings`` changed."""
    checks = Checks.of(params({"data": {"target": "folder", "target_classes": list(CLASSES)},
                               "paths": {"target": str(tmp_path / "data")},
                               "validate": {"min_images_per_class": 5, **settings}}))
    return validate.validate(target_dir=tmp_path / "data", checks=checks, out_dir=tmp_path / "out")


def critical(tmp_path, **overrides) -> str:
    with pytest.raises(ValidationFailed) as err:
        run(tmp_path, **overrides)
    return str(err.value)


def warned(summary, column) -> dict[str, str]:
    return next(w["files"] for w in summary.warnings if w["column"] == column)


@pytest.mark.parametrize(("name", "content", "words"), [
    ("empty.png", b"", "empty file (0 bytes)"),
    ("garbage.png", bytes(range(256)) * 3, "not an image Pillow can identify"),
    ("truncated.png", png_bytes(pixels())[:200], "truncated image data"),
    ("truncated.jpg", png_bytes(pixels(), "JPEG")[:300], "truncated image data"),
    ("animation.gif", png_bytes(pixels(), "GIF"), "GIF images are not allowed (validate.formats: PNG, JPEG)"),
    ("notes.txt", b"not a picture\n", "not an image Pillow can identify"),
    ("drawing.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
     "EPS images are not allowed"),  # identified from its header; Pillow's EPS decoder (Ghostscript) never runs
])
def test_a_bad_file_is_critical_and_named(tmp_path, name, content, words):
    data = good_folder(tmp_path / "data")
    (data / "dog" / name).write_bytes(content)
    message = critical(tmp_path)
    assert f"dog/{name}: " in message and words in message
    assert "validate.on_bad_file: quarantine" in message  # the fix is named


def test_a_bad_file_is_quarantined_when_asked_and_the_run_goes_on(tmp_path):
    data = good_folder(tmp_path / "data")
    (data / "dog" / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    summary = run(tmp_path, on_bad_file="quarantine")
    assert summary.success and summary.quarantined == 1 and "dog/garbage.png" in warned(summary, "decodes")
    assert "dog/garbage.png" in (tmp_path / "out" / "quarantine.csv").read_text()


def test_a_decompression_bomb_is_not_decoded(tmp_path):
    data = good_folder(tmp_path / "data")
    Image.new("L", (100, 100)).save(data / "cat" / "bomb.png")  # 10,000 pixels against a 5,000 limit
    message = critical(tmp_path, max_pixels=5000)
    assert "cat/bomb.png: decompression bomb: " in message and "(validate.max_pixels: 5000); not decoded" in message


def test_an_image_below_the_minimum_size_is_critical(tmp_path):
    data = good_folder(tmp_path / "data")
    Image.fromarray(pixels((10, 40))).save(data / "cat" / "thin.png")
    message = critical(tmp_path, min_size=16)
    assert "cat/thin.png: 40x10" in message and "validate.min_size (16)" in message


@pytest.mark.parametrize(("name", "array", "mode"), [
    ("deep.png", (pixels().astype(np.uint16) * 257), "I;16"),
    ("alpha.png", np.dstack([pixels(seed=s) for s in range(4)]), "RGBA"),
])
def test_16_bit_and_rgba_pngs_decode_with_a_mode_warning(tmp_path, name, array, mode):
    data = good_folder(tmp_path / "data")
    Image.fromarray(array).save(data / "cat" / name)
    summary = run(tmp_path)
    assert summary.success and warned(summary, "mode") == {f"cat/{name}": f"mode {mode}"}
    decoded = images.decode(data / "cat" / name, height=30, width=20, channels=1, rules=RULES)
    if mode == "I;16":  # 16-bit scaled to 8-bit, not clipped
        np.testing.assert_array_equal(decoded[..., 0], pixels())


def test_a_cmyk_jpeg_decodes_with_a_mode_warning(tmp_path):
    data = good_folder(tmp_path / "data")
    Image.new("CMYK", (24, 24), (0, 255, 255, 0)).save(data / "dog" / "print.jpg")  # red
    summary = run(tmp_path)
    assert summary.success and warned(summary, "mode") == {"dog/print.jpg": "mode CMYK"}
    red = images.decode(data / "dog" / "print.jpg", height=24, width=24, channels=3, rules=RULES)[12, 12]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_an_exif_rotated_jpeg_is_upright_in_training_and_in_predict(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from graft.export import contract
    from graft.predict import Predictor

    data = good_folder(tmp_path / "data")
    upright = np.zeros((40, 20), dtype=np.uint8)
    upright[:20] = 255  # white top half, as the camera saw it
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: a viewer turns it 90 degrees clockwise
    Image.fromarray(np.rot90(upright, k=1)).save(data / "cat" / "phone.jpg", quality=95, exif=exif)
    summary = run(tmp_path)
    assert summary.success
    table = manifest.read(tmp_path / "out" / "manifest.csv").set_index("path")
    assert table.at["cat/phone.jpg", "orientation"] == 6 and table.at["cat/phone.jpg", "width"] == 40
    trained = images.decode(data / "cat" / "phone.jpg", height=40, width=20, channels=1, rules=RULES)[..., 0]
    assert trained[:20].mean() > 200 and trained[20:].mean() < 50  # upright

    # predict: a real ONNX model whose class scores are "top half bright" vs "bottom half bright"
    weights = np.zeros((40 * 20, 2), dtype=np.float32)
    weights[:400, 0] = weights[400:, 1] = 0.01
    graph = helper.make_graph(
        [helper.make_node("Cast", ["pixels"], ["x"], to=TensorProto.FLOAT),
         helper.make_node("Flatten", ["x"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"])],
        "halves", [helper.make_tensor_value_info("pixels", TensorProto.UINT8, [None, 40, 20, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, weights.shape, weights.flatten())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in contract.describe(classes=["top", "bottom"], height=40, width=20, channels=1, formats=RULES.formats,
                                        max_pixels=RULES.max_pixels).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, tmp_path / "halves.onnx")
    (result,) = Predictor(tmp_path / "halves.onnx").predict([data / "cat" / "phone.jpg"])
    assert result["label"] == "top"
    expected = np.exp(trained.astype(np.float32).ravel() @ weights - (trained.astype(np.float32).ravel() @ weights).max())
    assert result["confidence"] == pytest.approx(float(expected[0] / expected.sum()), abs=1e-5)


def test_a_hidden_file_is_ignored(tmp_path):
    data = good_folder(tmp_path / "data")
    (data / "cat" / ".DS_Store").write_bytes(b"\x00\x01 finder junk")
    (data / ".git").mkdir()
    summary = run(tmp_path)
    assert summary.success and summary.files == 12 and summary.hidden_skipped == 2


def test_unicode_and_space_names_are_fine_and_split_copies_them(tmp_path):
    from graft.data import split

    data = good_folder(tmp_path / "data")
    Image.fromarray(pixels((24, 24))).save(data / "cat" / "chat noir é 猫.png")
    summary = run(tmp_path)
    assert summary.success and summary.class_counts["cat"] == 7
    table = split.split(manifest_csv=tmp_path / "out" / "manifest.csv", data_dir=data, out_dir=tmp_path / "split",
                        classes=CLASSES, seed=0, test_fraction=0.3, valid_fraction=0.3, train_fraction=None,
                        train_per_class=None, valid_per_class=None, hard_links=False)
    where = table.set_index("path").at["cat/chat noir é 猫.png", "split"]
    assert (tmp_path / "split" / where / "cat" / "chat noir é 猫.png").is_file()


def test_a_symlink_loop_is_named_and_never_followed(tmp_path):
    data = good_folder(tmp_path / "data")
    os.symlink("b.png", data / "cat" / "a.png")
    os.symlink("a.png", data / "cat" / "b.png")
    os.symlink("..", data / "dog" / "up")  # a folder loop: the walk would never end if it followed links
    message = critical(tmp_path)
    assert "cat/a.png: cannot read: Too many levels of symbolic links" in message
    assert "dog/up: a symbolic link to a folder (not followed)" in message


def test_an_empty_class_folder_is_critical(tmp_path):
    data = good_folder(tmp_path / "data", classes=("cat",))
    (data / "dog").mkdir()
    assert "dog: class 'dog' has 0 usable images" in critical(tmp_path)


def test_a_single_class_dataset_is_critical(tmp_path):
    good_folder(tmp_path / "data", classes=("cat",))
    assert "dog: class 'dog' has no folder" in critical(tmp_path)


def test_an_unknown_class_folder_is_critical(tmp_path):
    good_folder(tmp_path / "data", classes=("cat", "dog", "cow"))
    assert "cow: folder 'cow' (6 files) is not a configured class" in critical(tmp_path)


def test_identical_images_under_two_classes_are_critical_naming_both(tmp_path):
    data = good_folder(tmp_path / "data")
    (data / "dog" / "same.png").write_bytes((data / "cat" / "cat-2.png").read_bytes())
    message = critical(tmp_path)
    assert "cat/cat-2.png: dog/same.png" in message and "dog/same.png: cat/cat-2.png" in message


def test_the_cli_prints_a_clean_error_and_exits_1(tmp_path):
    data = good_folder(tmp_path / "my images")  # beside the project's data/, never inside it
    (data / "dog" / "empty.png").write_bytes(b"")
    changes = {"paths": {"target": str(data), "validation": str(tmp_path / "out")},
               "data": {"target": "folder", "target_classes": list(CLASSES)}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params(changes)))
    result = subprocess.run([str(BIN / "graft"), "validate"], cwd=tmp_path, env=env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1, result.stderr
    assert "graft validate: error:" in result.stderr and "dog/empty.png: empty file (0 bytes)" in result.stderr
    assert "Traceback" not in result.stderr


def test_outside_the_gate_every_unreadable_file_is_named_in_one_error(tmp_path):
    """The autoencoder's unlabelled folder (and any folder training reads) goes through the same
    decoder: a GIF, a bomb and a FIFO are all named, not only the first."""
    from graft.data.load import decode_all
    from graft.errors import BadImage

    folder = good_folder(tmp_path / "unlabelled", classes=("any",), n=2) / "any"
    (folder / "animation.png").write_bytes(png_bytes(pixels(), "GIF"))
    (folder / "huge.png").write_bytes(png_bytes(np.zeros((40, 40), dtype=np.uint8)))
    os.mkfifo(folder / "pipe.png")
    files = sorted(folder.iterdir())
    with pytest.raises(BadImage) as err:
        decode_all(files, height=8, width=8, channels=1, rules=images.Rules(formats=("PNG",), max_pixels=1000),
                   label="reading pretrain.data=unlabelled")
    message = str(err.value)
    assert message.startswith("3 of 5 files (pretrain.data=unlabelled) cannot be read")
    assert "animation.png: GIF images are not allowed" in message and "huge.png: decompression bomb" in message
    assert "pipe.png: a named pipe (FIFO)" in message
