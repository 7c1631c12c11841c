"""Causal SPMamba and its streaming runner: causality, streaming == offline, serialization."""

import math

import pytest
import torch
from asteroid.models.base_models import BaseModel
from conftest import tiny_spmamba_args

from asteroid_spmamba import SPMamba
from asteroid_spmamba.mamba import BiMamba
from asteroid_spmamba.masknn.norms import leaky_mean
from asteroid_spmamba.masknn.stft import CausalSTFTDecoder, CausalSTFTEncoder
from asteroid_spmamba.models.spmamba import CAUSAL_PRESETS, PRESETS
from asteroid_spmamba.streaming import StreamingSeparator

# n_fft 64, hop 16: the stream lags by 48 samples, latency 64 samples.
TINY_CAUSAL = tiny_spmamba_args(causal=True)


def _causal(**overrides):
    torch.manual_seed(0)
    return SPMamba(**{**TINY_CAUSAL, **overrides}).eval()


def _stream(model, wav, block, **kwargs):
    kwargs.setdefault("match_levels", False)  # the raw output, to compare with model(wav)
    stream = StreamingSeparator(model, **kwargs)
    outs = [stream.process(wav[..., i : i + block]) for i in range(0, wav.shape[-1], block)]
    outs.append(stream.flush())
    return torch.cat(outs, dim=-1)


@pytest.fixture(scope="module")
def model():
    return _causal()


@pytest.fixture(scope="module")
def mixture():
    return torch.randn(2, 777, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("block", [1, 16, 7, 100, 777])
def test_streaming_equals_offline(model, mixture, block):
    # block 16 = one hop per call; 1 and 7 leave incomplete hops waiting; 777 = all at once
    with torch.no_grad():
        ref = model(mixture)
    out = _stream(model, mixture, block)
    assert out.shape == ref.shape == (2, 2, 777)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(attn_window=5),  # keys/values cache bounded to 4 past frames
        dict(n_fft=60, hop_length=25, emb_ks=3),  # hop does not divide n_fft
        dict(norm_time_constant=None, mamba_layers=2, bidirectional=False),
        dict(norm_time_constant=0.0, n_layers=2, in_channels=2),
        dict(output="mask", in_channels=2),  # complex masks of the first microphone's spectrum
    ],
)
def test_streaming_equals_offline_other_configs(overrides):
    model = _causal(**overrides)
    wav = torch.randn(1, model.in_channels, 500, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(wav)
    for block in (model.encoder.hop_length, 33):
        torch.testing.assert_close(_stream(model, wav, block), ref, rtol=1e-5, atol=1e-5)


def test_streaming_equals_offline_float64_tightly(mixture):
    # In float64 rounding vanishes: any misalignment of states or buffers would show.
    model = _causal(attn_window=7).double()
    wav = mixture.double()
    with torch.no_grad():
        ref = model(wav)
    torch.testing.assert_close(_stream(model, wav, 16), ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        _stream(model, wav, 50, max_frames_per_call=2), ref, rtol=1e-10, atol=1e-10
    )


def test_stream_lags_by_n_fft_minus_hop(model, mixture):
    stream = StreamingSeparator(model, match_levels=False)
    assert (stream.delay, stream.latency) == (48, 64)
    assert stream.latency_ms == pytest.approx(8.0)  # 64 samples at 8 kHz
    with torch.no_grad():
        ref = model(mixture)
    received = 0
    for k in range(1, 20):
        out = stream.process(mixture[:, (k - 1) * 16 : k * 16])
        assert out.shape[-1] == max(0, 16 * k - 48) - received
        # what comes out is the offline output's beginning: a prefix, not a delayed copy
        torch.testing.assert_close(
            out, ref[..., received : received + out.shape[-1]], rtol=1e-5, atol=1e-5
        )
        received += out.shape[-1]


def test_offline_causal_model_is_causal(model):
    latency = model.latency
    assert latency == model.encoder.n_fft == 64
    x = torch.randn(1, 600, generator=torch.Generator().manual_seed(3))
    for t0 in (300, 300 + 15):  # 315 = 19 * hop + hop - 1: output t0 - latency + 1 depends on it
        x2 = x.clone()
        x2[:, t0:] = 5 * torch.randn(1, 600 - t0, generator=torch.Generator().manual_seed(4))
        with torch.no_grad():
            y, y2 = model(x), model(x2)
        keep = t0 - latency + 1
        torch.testing.assert_close(y2[..., :keep], y[..., :keep], rtol=0, atol=1e-6)
        assert (y2[..., keep:] - y[..., keep:]).abs().max() > 1e-3
    # the same check catches the non-causal model
    offline = SPMamba(**tiny_spmamba_args()).eval()
    with torch.no_grad():
        assert (offline(x2)[..., :keep] - offline(x)[..., :keep]).abs().max() > 1e-3


def test_causal_model_with_unfold_hop_two_is_causal():
    model = _causal(emb_ks=4, emb_hs=2)
    x = torch.randn(1, 500, generator=torch.Generator().manual_seed(5))
    x2 = x.clone()
    x2[:, 250:] = 0.0
    with torch.no_grad():
        y, y2 = model(x), model(x2)
    assert y.shape == (1, 2, 500)
    torch.testing.assert_close(y2[..., : 250 - 63], y[..., : 250 - 63], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="emb_hs=1"):
        StreamingSeparator(model)


def test_causal_model_is_scale_equivariant_and_silent_on_silence(model):
    x = torch.randn(1, 400, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(model(3.0 * x), 3.0 * model(x), rtol=1e-4, atol=1e-5)
        out = model(torch.zeros(1, 300))
    assert torch.isfinite(out).all() and out.abs().max() < 1e-6


def test_causal_model_takes_short_inputs(model):
    with torch.no_grad():
        for length in (1, 15, 17):
            assert model(torch.randn(1, length)).shape == (1, 2, length)


def test_causal_serializes_and_round_trips(tmp_path, mixture):
    model = _causal(attn_window=9, norm_time_constant=0.5)
    path = tmp_path / "causal.pth"
    torch.save(model.serialize(), path)
    for loader in (BaseModel.from_pretrained, SPMamba.from_pretrained):
        loaded = loader(str(path)).eval()
        args = loaded.get_model_args()
        assert args == model.get_model_args()
        assert (
            args["causal"] is True
            and args["attn_window"] == 9
            and args["norm_time_constant"] == 0.5
        )
        with torch.no_grad():
            assert torch.equal(loaded(mixture), model(mixture))


def test_causal_presets():
    assert not set(CAUSAL_PRESETS) & set(PRESETS)
    for name, expected_fft in (("causal-16k", 256), ("causal-8k", 128)):
        model = SPMamba.from_preset(name)
        assert model.causal and model.encoder.n_fft == expected_fft
        assert 1000 * model.latency / model.sample_rate == 16.0  # ms
        assert model.masker.blocks[0].attn_window == 250
        # time-axis Mamba unidirectional, frequency-axis Mamba bidirectional
        assert model.masker.blocks[0].inter_seq.backward_blocks is None
        assert model.masker.blocks[0].intra_seq.backward_blocks is not None
    assert SPMamba.from_preset("causal_16k", n_layers=1).get_model_args()["n_layers"] == 1


def test_default_model_is_unchanged():
    model = SPMamba()
    assert sum(p.numel() for p in model.parameters()) == 6_141_826
    args = model.get_model_args()
    assert args["causal"] is False and args["attn_window"] is None
    assert isinstance(model.masker.conv[1], torch.nn.GroupNorm)
    assert model.masker.deconv.padding == (1, 1) and not model.masker.blocks[0].causal_attention
    with pytest.raises(ValueError, match="causal"):
        StreamingSeparator(model)
    with pytest.raises(ValueError, match="attn_window"):
        SPMamba(attn_window=10)


def test_causal_parameter_count_by_hand():
    causal, offline = _causal(), SPMamba(**tiny_spmamba_args())
    n_causal = sum(p.numel() for p in causal.parameters())
    n_offline = sum(p.numel() for p in offline.parameters())
    # differences: one time-axis Mamba direction less, its transposed conv takes half the channels,
    # and LayerNorm4DCF (2 x 8 x 33) instead of GroupNorm (2 x 8) after the input convolution.
    backward = sum(
        p.numel() for p in offline.masker.blocks[0].inter_seq.backward_blocks.parameters()
    )
    inter_linear = 16 * 8 * 2  # ConvTranspose1d(32 -> 16 inputs, 8 outputs, kernel 2)
    assert n_offline - n_causal == backward + inter_linear + 2 * 8 - 2 * 8 * 33


def test_stream_state_handling(model, mixture):
    stream = StreamingSeparator(model, match_levels=False)
    stream.process(mixture[:, :40])
    with pytest.raises(ValueError, match="batch size 2"):
        stream.process(mixture[:1, :40])
    with pytest.raises(TypeError, match="floating-point"):
        stream.process(torch.zeros(2, 16, dtype=torch.int16))
    with pytest.raises(ValueError, match="NaN"):
        stream.process(torch.full((2, 16), float("nan")))
    stream.reset()
    with torch.no_grad():
        ref = model(mixture[:1, :200])
    torch.testing.assert_close(_stream(model, mixture[0, :200], 16), ref, rtol=1e-5, atol=1e-5)
    assert stream.flush().shape == (1, 2, 0)
    assert stream.process(torch.zeros(2, 0)).shape == (2, 2, 0)


def test_mamba_step_continues_forward():
    torch.manual_seed(0)
    seq = BiMamba(12, n_layers=2, bidirectional=False, d_state=4, expand=2).eval()
    x = torch.randn(3, 37, 12)
    with torch.no_grad():
        ref = seq(x)
        for sizes in ([1] * 37, [5, 1, 10, 21]):
            state, outs, start = None, [], 0
            for n in sizes:
                out, state = seq.step(x[:, start : start + n], state)
                outs.append(out)
                start += n
            torch.testing.assert_close(torch.cat(outs, dim=1), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="bidirectional"):
        BiMamba(12).step(x)


def test_leaky_mean_by_hand_and_in_pieces():
    x = torch.tensor([[1.0, 3.0, 2.0]])
    m, _ = leaky_mean(x, 0.5)
    # a = 0.5, 1.75, 1.875; c = 0.5, 0.75, 0.875
    torch.testing.assert_close(m, torch.tensor([[1.0, 1.75 / 0.75, 1.875 / 0.875]]))
    m1, state = leaky_mean(x[:, :1], 0.5)
    m2, _ = leaky_mean(x[:, 1:], 0.5, state)
    assert torch.equal(torch.cat([m1, m2], dim=-1), m)
    with pytest.raises(ValueError, match="alpha"):
        leaky_mean(x, 1.0)


@pytest.mark.parametrize("n_fft,hop", [(64, 16), (60, 25), (32, 16)])
def test_causal_stft_reconstructs_perfectly(n_fft, hop):
    enc, dec = CausalSTFTEncoder(n_fft, hop).double(), CausalSTFTDecoder(n_fft, hop).double()
    for length in (1, n_fft - 1, 333):
        x = torch.randn(2, 1, length, dtype=torch.float64)
        spec = enc(x)
        assert spec.shape == (
            2,
            2,
            math.floor((length - 1 + n_fft - hop) / hop) + 1,
            n_fft // 2 + 1,
        )
        y = dec(spec.view(2, 1, 2, *spec.shape[2:]), length)
        torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
    # frame t ends with hop t: the first frame holds samples 0 .. hop-1 only
    x = torch.zeros(1, 1, 4 * n_fft, dtype=torch.float64)
    x[..., hop:] = 1.0
    assert enc(x)[:, :, 0].abs().max() < 1e-12


def test_streamed_levels_follow_the_mixture_on_the_bundled_recording(model):
    """match_levels (default): the written stream is at the mixture's level, not the network's; its
    sources add up to the DC-free mixture; fed as one block it equals the offline match_mixture."""
    import soundfile as sf

    from asteroid_spmamba.demo import REAL_MIXTURE
    from asteroid_spmamba.levels import StreamingMixtureFit, match_mixture

    mix, _ = sf.read(REAL_MIXTURE / "mix.flac", dtype="float32")
    wav = torch.from_numpy(mix[:8000] + 0.2)[
        None
    ]  # 1 s at the tiny model's 8 kHz, a DC offset of 0.2
    stream = StreamingSeparator(model)
    outs = [stream.process(wav[..., i : i + 400]) for i in range(0, wav.shape[-1], 400)] + [
        stream.flush()
    ]
    out = torch.cat(outs, -1)[0]
    assert out.shape == (2, 8000) and stream.active.shape == (1, 2)
    with torch.no_grad():
        raw = model(wav)[0]
    rms = lambda x: float(x.pow(2).mean().sqrt())  # noqa: E731
    mix0 = wav[0] - wav[0].mean()
    assert rms(out.sum(0)[4000:] - mix0[4000:]) < 0.1 * rms(mix0)  # after the DC follower settled
    assert max(rms(o) for o in out) <= 1.05 * rms(mix0)
    fit = StreamingMixtureFit(8000)
    one_block = fit(raw[None].double(), fit.remove_dc(wav.double()))[0]
    torch.testing.assert_close(
        one_block, match_mixture(raw[None].double(), (wav - wav.mean()).double())[0]
    )
