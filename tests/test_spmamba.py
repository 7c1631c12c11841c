"""SPMamba as an Asteroid model: configuration, contract, serialization and input checks."""

import asteroid
import numpy as np
import pytest
import soundfile as sf
import torch
from asteroid.models.base_models import BaseModel
from conftest import tiny_spmamba_args

import asteroid_spmamba
from asteroid_spmamba import SPMamba
from asteroid_spmamba.models.spmamba import PRESETS


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return SPMamba(**tiny_spmamba_args()).eval()


def test_echo2mix_default_has_the_original_parameter_count():
    # The original implementation (JusperLee/SPMamba, configs/spmamba-echo2mix.yml): 6,141,826.
    assert sum(p.numel() for p in SPMamba().parameters()) == 6_141_826


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name):
    model = SPMamba.from_preset(name)
    assert model.sample_rate == PRESETS[name]["sample_rate"]
    assert model.encoder.n_fft == PRESETS[name]["n_fft"]
    n_params = sum(p.numel() for p in model.parameters())
    # Same GridNet; only the frequency axis (attention normalisation params) changes with n_fft.
    assert n_params == 6_141_826 + _gridnet_freq_params(name)
    with pytest.raises(ValueError, match="Unknown SPMamba preset"):
        SPMamba.from_preset("timit")


def _gridnet_freq_params(name):
    """Difference of parameter count due to n_freqs only (LayerNorm4DCF
    gains/biases), hand computed."""
    n_freqs_default, n_freqs = 257, PRESETS[name]["n_fft"] // 2 + 1
    e_default, e = -(-512 // n_freqs_default), -(-512 // n_freqs)

    def per_block(E, F):
        return 4 * (2 * (E * 16 + E + 1 + 2 * E * F) + (16 * 4 + 4 + 1 + 2 * 4 * F)) + (
            16 * 16 + 16 + 1 + 2 * 16 * F
        )

    return 6 * (per_block(e, n_freqs) - per_block(e_default, n_freqs_default))


def test_registered_with_asteroid():
    assert asteroid.models.get("SPMamba") is SPMamba


@pytest.mark.parametrize("shape", [(400,), (3, 400), (3, 1, 400)])
def test_shapes(tiny, shape):
    with torch.no_grad():
        out = tiny(torch.randn(*shape))
    batch = shape[0] if len(shape) > 1 else 1
    assert out.shape == (batch, 2, 400)


@pytest.mark.parametrize("length", [64, 65, 79, 80, 333, 1000])
def test_output_length_equals_input_length(tiny, length):
    with torch.no_grad():
        assert tiny(torch.randn(2, length)).shape[-1] == length


def test_scale_is_restored(tiny):
    # Input normalisation: separating a scaled mixture gives scaled estimates.
    x = torch.randn(1, 500)
    with torch.no_grad():
        torch.testing.assert_close(tiny(3.0 * x), 3.0 * tiny(x), rtol=1e-4, atol=1e-5)


def test_silence_gives_silence_not_nan(tiny):
    with torch.no_grad():
        out = tiny(torch.zeros(1, 300))
    assert torch.isfinite(out).all() and out.abs().max() < 1e-6


@pytest.mark.parametrize(
    "bad,error,match",
    [
        (torch.randn(1, 2, 400), ValueError, "2 channels"),
        (torch.randn(2, 1, 1, 400), ValueError, "dimensions"),
        (torch.randn(1, 63), ValueError, "at least 64 samples"),
        (torch.tensor([[0.0] * 200 + [float("nan")]]), ValueError, "NaN"),
        (torch.tensor([[0.0] * 200 + [float("inf")]]), ValueError, "NaN or Inf"),
        (torch.zeros(1, 400, dtype=torch.int16), TypeError, "floating-point"),
        (np.zeros((1, 400), dtype=np.float32), TypeError, "torch.Tensor"),
    ],
)
def test_bad_input_is_explained(tiny, bad, error, match):
    with pytest.raises(error, match=match):
        tiny(bad)


def test_wrong_sample_rate_passed_explicitly(tiny):
    with pytest.raises(ValueError, match="runs at 8000 Hz but the input is 16000 Hz"):
        tiny(torch.randn(1, 400), sample_rate=16000)
    with pytest.raises(ValueError, match="resample"):
        tiny.separate(torch.randn(1, 1, 400), sample_rate=16000)
    assert tiny(torch.randn(1, 400), sample_rate=8000).shape == (1, 2, 400)


def test_serialize_save_from_pretrained(tiny, tmp_path):
    path = tmp_path / "model.pth"
    torch.save(tiny.serialize(), path)
    for loader in (BaseModel.from_pretrained, SPMamba.from_pretrained):
        loaded = loader(str(path)).eval()
        assert isinstance(loaded, SPMamba)
        assert loaded.get_model_args() == tiny.get_model_args()
        x = torch.randn(2, 700)
        with torch.no_grad():
            assert torch.equal(loaded(x), tiny(x))


def test_separate_numpy_torch_and_file(tiny, tmp_path):
    x = 0.1 * np.random.RandomState(0).randn(1, 1, 800).astype(
        np.float32
    )  # no clipping in 16-bit files
    est_np = tiny.separate(x)
    assert isinstance(est_np, np.ndarray) and est_np.shape == (1, 2, 800)
    est_t = tiny.separate(torch.from_numpy(x))
    np.testing.assert_allclose(est_t.numpy(), est_np, rtol=1e-5, atol=1e-6)
    wav = tmp_path / "mix.wav"
    sf.write(wav, x[0, 0], 8000, subtype="FLOAT")
    tiny.separate(str(wav))
    for i in (1, 2):
        est, sr = sf.read(tmp_path / f"mix_est{i}.wav")
        assert sr == 8000 and est.shape == (800,)
        np.testing.assert_allclose(est, est_np[0, i - 1], rtol=0, atol=2**-14)  # 16-bit PCM file


def test_file_at_another_rate_is_resampled_on_request(tiny, tmp_path):
    wav = tmp_path / "mix16k.wav"
    sf.write(wav, np.random.RandomState(1).randn(1600).astype(np.float32), 16000, subtype="FLOAT")
    with pytest.raises(RuntimeError, match="resample=True"):
        tiny.file_separate(str(wav))
    tiny.file_separate(str(wav), resample=True)
    est, sr = sf.read(tmp_path / "mix16k_est1.wav")
    assert sr == 16000 and abs(len(est) - 1600) <= 2


def test_unidirectional_model_runs_and_serializes(tmp_path):
    model = SPMamba(**tiny_spmamba_args(bidirectional=False)).eval()
    bi = SPMamba(**tiny_spmamba_args())
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in bi.parameters())
    with torch.no_grad():
        out = model(torch.randn(1, 500))
    assert out.shape == (1, 2, 500)
    torch.save(model.serialize(), tmp_path / "m.pth")
    assert (
        BaseModel.from_pretrained(str(tmp_path / "m.pth")).get_model_args()["bidirectional"]
        is False
    )


def test_unidirectional_sequence_modules_only_look_back_in_time():
    model = SPMamba(**tiny_spmamba_args(bidirectional=False)).eval()
    seq = model.masker.blocks[0].inter_seq  # runs along the time axis
    x = torch.randn(3, 30, seq.forward_blocks[0].norm.weight.numel())
    x2 = x.clone()
    x2[:, 20:] = torch.randn(3, 10, x.shape[-1])
    with torch.no_grad():
        torch.testing.assert_close(seq(x)[:, :20], seq(x2)[:, :20])


def test_backward_pass_gives_finite_gradients():
    model = SPMamba(**tiny_spmamba_args())
    model(torch.randn(2, 300)).pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("in_channels", [1, 2])
def test_mask_output_multiplies_the_mixture_spectrum(in_channels):
    """output="mask": the estimates are iSTFT(mask x STFT(first microphone)), recomputed here with
    torch's complex STFT in float64; the parameters are those of the mapping model."""
    torch.manual_seed(0)
    args = tiny_spmamba_args(in_channels=in_channels, n_layers=2)
    model = SPMamba(**args, output="mask").double().eval()
    assert model.get_model_args()["output"] == "mask"
    assert [p.shape for p in model.parameters()] == [p.shape for p in SPMamba(**args).parameters()]
    wav = torch.randn(2, in_channels, 500, dtype=torch.float64)
    std = wav.std(dim=(1, 2), keepdim=True)
    n_fft, hop = args["n_fft"], args["hop_length"]
    window = model.encoder.window  # the model's Hann window (made in float32)
    with torch.no_grad():
        masks = model.masker(model.encoder(wav / std))  # (batch, n_src, 2, frames, freqs)
        mixture = torch.stft(wav[:, 0] / std[:, 0], n_fft, hop, window=window, return_complex=True)
        spectra = torch.complex(masks[:, :, 0], masks[:, :, 1]).transpose(-1, -2) * mixture[:, None]
        ref = (
            torch.istft(spectra.flatten(0, 1), n_fft, hop, window=window, length=500).view(
                2, 2, 500
            )
            * std
        )
        torch.testing.assert_close(model(wav), ref, rtol=1e-9, atol=1e-10)
    with pytest.raises(ValueError, match="output must be one of"):
        SPMamba(**args, output="masks")


def test_scan_backends_agree_in_the_model():
    model = SPMamba(**tiny_spmamba_args()).eval()
    x = torch.randn(1, 400)
    with torch.no_grad():
        ref = asteroid_spmamba.set_scan_backend(model, "sequential")(x)
        out = asteroid_spmamba.set_scan_backend(model, "torch")(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "n_fft,hop,frames,length",
    [(256, 128, 20, 2500), (128, 64, 5, 300), (256, 64, 10, 700), (128, 64, 4, 400)],
)
def test_istft_overlap_add_equals_torch_istft(n_fft, hop, frames, length):
    """The decoder's capture-safe iSTFT (used inside CUDA graphs) is torch.istft, to float64
    rounding; the last case asks for more samples than the frames cover (zeros, as torch.istft)."""
    from asteroid_spmamba.masknn.stft import istft_overlap_add

    g = torch.Generator().manual_seed(n_fft + frames)
    spec = torch.randn(3, frames, n_fft // 2 + 1, dtype=torch.complex128, generator=g)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    ours = istft_overlap_add(spec, n_fft, hop, window, length)
    ref = torch.istft(
        spec.transpose(1, 2), n_fft, hop, window=window, center=True, onesided=True, length=length
    )
    assert ours.shape == ref.shape == (3, length)
    assert (ours - ref).abs().max().item() < 1e-12
