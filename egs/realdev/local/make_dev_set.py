#!/usr/bin/env python
"""Build a small real-speech dev set (two-speaker mixtures of real
recordings) in the Echo2Mix layout.

The recordings are the speech samples that ship in the git history of pyroomacoustics
(https://github.com/LCAV/pyroomacoustics); none of them is used by any training corpus of this
repository, so the set measures how a model trained on synthetic (eSpeak NG) voices does on real
speech. Every file is checked against the SHA-256 of :data:`SOURCES` before use.

* SiSEC 2011 "dev1" speech sources (4 female, 4 male speakers, 10 s each, 16 kHz), committed in
  pyroomacoustics at 4ac8f49 (branch of pull request #51, never merged into master):
  ``examples/input_samples/SiSec2011_Speech/dev1_{female,male}4_src_{1..4}.wav``.
* CMU ARCTIC utterances (16 kHz) from release v0.10.1 (f02b01d):
  ``examples/input_samples/cmu_arctic_us_{aew,axb}_a000*.wav`` and ``notebooks/arctic_a0010.wav``.

``--corpora librispeech vctk`` builds the same kind of set from 16 other real talkers: eleven
LibriSpeech train-clean-100 utterances kept in the Resemblyzer repository and five VCTK utterances
kept in the msc-project repository (``--sources`` only; ``--list-sources`` gives their URLs).

Usage::

    # git clone or bare git dir of pyroomacoustics
    python make_dev_set.py OUT --pyroomacoustics-dir PATH
    # a folder holding the files by base name
    python make_dev_set.py OUT --sources DIR

Output (16-bit PCM, 16 kHz)::

    OUT/anechoic/<ID>/{mix,spk1_reverb,spk2_reverb}.wav   dry sources, scaled
    OUT/reverb/<ID>/{mix,spk1_reverb,spk2_reverb}.wav     reverberant images in a shoebox room
                                                          (targets)
    OUT/dev_set.json                                      sources (URL, commit, path, SHA-256,
                                                          licence), parameters, per-mixture
                                                          metadata

Mixing (the same pairs, windows, SIR and peak level in both conditions, so the two conditions differ
only by the room):

* pairs: two *different* speakers, taken from the file names (SiSEC: ``female4_src_k`` is speaker
  ``sisec_fk``; CMU ARCTIC: the speaker code, ``aew`` or ``axb``). ``arctic_a0010.wav`` names no
  speaker; its pitch (median F0 about 139 Hz) says male, so it is never paired with a male CMU
  ARCTIC speaker (it could be one of them). The planner spreads the mixtures over as many distinct
  speaker pairs as possible (40 mixtures: 40 distinct pairs out of the 54 allowed), then evens out
  the use of each speaker and file.
* windows (``duration``, 4 s): leading/trailing silence is trimmed (the rule of
  :mod:`asteroid_spmamba.data.speech`); a recording longer than the window gives a random window
  with at least half of its 20 ms frames active (frame power within 30 dB of the recording's 95th
  percentile); a shorter one is placed whole at a random offset (zero padding), two short ones
  overlapping by at least half of the shorter.
* level: speaker 1 over speaker 2 (SIR, RMS of the targets over the window) uniform in [-5, 5] dB;
  peak of the louder of sources and mixture uniform in [0.25, 0.9] of full scale (no clipping).
* room (reverb): :func:`asteroid_spmamba.data.mixing._room_rirs`: shoebox 3-10 x 3-8 x 2.5-4 m,
  RT60 uniform in 0.2-0.6 s (``pra.inverse_sabine``), one microphone, two talkers 0.5 m or more
  from the walls and from the microphone. The sources are convolved with 1 s of their own past
  (when the recording has it), so a window does not start with a dry onset.
* quantisation: sources are rounded to int16 first, the mixture is their integer sum, so
  ``mix == spk1_reverb + spk2_reverb`` exactly.

Determinism: every draw comes from generators seeded by ``(seed, purpose, index)``; rebuilding with
the same seed and the same package versions (recorded in ``dev_set.json``)
gives byte-identical files.
The set is built in ``OUT.partial`` and renamed to ``OUT`` when complete.
"""

import argparse
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np

from asteroid_spmamba.data.mixing import LEVEL_DB, PEAK, _rms
from asteroid_spmamba.data.speech import (
    TRIM_MARGIN_S,
    TRIM_THRESHOLD,
    package_versions,
    resample,
)
from asteroid_spmamba.data.synthetic import SUBTYPE

GENERATOR_VERSION = 1
SAMPLE_RATE = 16000
DURATION_S = 4.0
N_MIXTURES = 40
SEED = 0
CONDITIONS = ("anechoic", "reverb")
CORPORA = ("sisec2011", "cmu_arctic")  # the dev set
OTHER_CORPORA = ("librispeech", "vctk")  # other speakers (--corpora librispeech vctk)
ALL_CORPORA = CORPORA + OTHER_CORPORA
WAV_FILES = ("mix.wav", "spk1_reverb.wav", "spk2_reverb.wav")
FRAME_S = 0.02
ACTIVE_DB = -30.0  # a frame is active when its power is within 30 dB of the 95th percentile
MIN_ACTIVE = 0.5  # fraction of active frames in a window cut from a longer recording
MIN_OVERLAP = 0.5  # two short utterances overlap by at least this fraction of the shorter
PREROLL_S = 1.0  # past of the recording convolved with the room before the window
MAX_TRIES = 50
# SHA-256 of every wav of the set built with the defaults (written by --write-manifest): a rebuild
# is compared with it, so a change of a helper or of a package version that alters the audio shows.
MANIFEST = Path(__file__).with_name("dev_set.sha256")

REPO_URL = "https://github.com/LCAV/pyroomacoustics"
LIBRI_URL = "https://github.com/resemble-ai/Resemblyzer"
VCTK_URL = "https://github.com/RichardSterry/msc-project"
LIBRI_COMMIT = "dc22ae70b93eccfa572e934f47335e32754ff865"
VCTK_COMMIT = "3beeadae48958ea33f07e4a28300f7e9c873dc05"
CORPUS_NAMES = {
    "sisec2011": "SiSEC 2011 dev1 sources from the pyroomacoustics repository",
    "cmu_arctic": "CMU ARCTIC utterances from the pyroomacoustics repository",
    "librispeech": "LibriSpeech train-clean-100 utterances from the Resemblyzer repository",
    "vctk": "VCTK utterances from the msc-project repository",
}
CORPUS_REPOS = {
    "sisec2011": REPO_URL,
    "cmu_arctic": REPO_URL,
    "librispeech": LIBRI_URL,
    "vctk": VCTK_URL,
}
SISEC_COMMIT = "4ac8f49ec9e48dab841b0429b7c183f1a379abf2"  # refs/pull/51/head only
CMU_COMMIT = "f02b01dd6609709e2089aefa5d1e59c91d3a0601"  # tag v0.10.1

LICENCES = {
    "sisec2011": {
        "summary": "No licence stated in pyroomacoustics: the README next to the files says only "
        "that they were 'extracted from the SiSec2011 evaluation campaign and are included for "
        "testing purposes'. The SiSEC 2008 page of the same under-determined speech task "
        "distributes its data under Creative Commons Attribution-NonCommercial-ShareAlike 2.0, and "
        "the SiSEC 2011 music files committed beside them (same commit) are 'scientific research "
        "only' / CC BY-NC-SA 3.0. Treat as research use, non-commercial; do not redistribute (not "
        "committed to this repository).",
        "where": f"{REPO_URL}/blob/{SISEC_COMMIT}/examples/input_samples/SiSec2011_Speech/"
        "README.md; "
        "http://sisec2008.wiki.irisa.fr/tiki-index026a.html?page=Under-determined+speech+and+music+mixtures",
        "redistributable": False,
    },
    "cmu_arctic": {
        "summary": "CMU ARCTIC (Kominek & Black, CMU-LTI-03-177, 2003): 'distributed as free "
        "software, without restriction on commercial or non-commercial use' under CMU's permissive "
        "licence (keep the copyright notice, mark modifications, keep the authors' names, no "
        "endorsement). pyroomacoustics/datasets/cmu_arctic.py: 'License: Permissive, attribution "
        "required'. The pyroomacoustics README next to the files names the corpus, not the "
        "licence; pyroomacoustics itself is MIT (Copyright (c) 2014-2017 EPFL-LCAV).",
        "where": f"{REPO_URL}/blob/{CMU_COMMIT}/examples/input_samples/README.md; "
        f"{REPO_URL}/blob/{CMU_COMMIT}/pyroomacoustics/datasets/cmu_arctic.py; "
        "http://www.festvox.org/cmu_arctic/",
        "redistributable": True,
    },
    "librispeech": {
        "summary": "LibriSpeech ASR corpus (Panayotov et al., ICASSP 2015), train-clean-100 "
        "utterances kept in the Resemblyzer repository (Apache-2.0): 'LibriSpeech ASR corpus is "
        "licensed under a Creative Commons Attribution 4.0 International License' (LICENSE.TXT "
        "beside them). The speakers are in LibriMix's training set: do not score LibriMix-trained "
        "models on them.",
        "where": f"{LIBRI_URL}/blob/{LIBRI_COMMIT}/audio_data/librispeech_test-other/LICENSE.TXT; "
        "https://www.openslr.org/12",
        "redistributable": True,
    },
    "vctk": {
        "summary": "CSTR VCTK corpus, 48 kHz wav files as in release 0.80 ('licensed under Open "
        "Data Commons Attribution License (ODC-By) v1.0'; release 0.92: CC BY 4.0), kept in the "
        "msc-project repository (its own content CC BY-NC 4.0); speaker sex and accent from "
        "its docs/vctk/vctk_meta_data.",
        "where": f"{VCTK_URL}/tree/{VCTK_COMMIT}/docs/vctk; "
        "https://datashare.ed.ac.uk/handle/10283/3443",
        "redistributable": True,
    },
}

SISEC_DIR = "examples/input_samples/SiSec2011_Speech"
CMU_DIR = "examples/input_samples"
# name: (corpus, commit, path in the repository, git blob id, SHA-256)
SOURCES: dict[str, tuple[str, str, str, str, str]] = {
    "dev1_female4_src_1.wav": (
        "sisec2011",
        SISEC_COMMIT,
        f"{SISEC_DIR}/dev1_female4_src_1.wav",
        "8cea8207f8a1ddffe11d75b71cd330ad319768c3",
        "f7b18d4317365e6959ece0110b8807d525941105048798ac7afe64dacbe3aba8",
    ),
    "dev1_female4_src_2.wav": (
        "sisec2011",
        SISEC_COMMIT,
        f"{SISEC_DIR}/dev1_female4_src_2.wav",
        "074eab7c7d0056a84b4fa3af02ddab7385095192",
        "4a0231dbda274ab216393cfa2a0a230e648ded65fffad5567cf78e088b5c0d39",
    ),
    "dev1_female4_src_3.wav": (
        "sisec2011",
        SISEC_COMMIT,
        f"{SISEC_DIR}/dev1_female4_src_3.wav",
        "7ec780892729743fc19f29bf104c132f58c54c16",
        "62a4186daf3c3df631b03bb74b5536c388f187865b3f389815991594da493b21",
    ),
    "dev1_female4_src_4.wav": (
        "sisec2011",
        SISEC_COMMIT,
        f"{SISEC_DIR}/dev1_female4_src_4.wav",
        "bb346a59dc64eaa9d8c1f740093cdc06462eb114",
        "3b1e27403ab03c2d94f931842e01a1f9e465cd2d05c652ab732b5d267cd218a0",
    ),
    "dev1_male4_src_1.wav": (
        "sisec2011",
        SISEC_COMMIT,
        f"{SISEC_DIR}/dev1_male4_src_1.wav",
        "6008151146578acb4fe96ac55787f38608616ac7",
        "ad3f7253d659d7b37590c328910064cdb05bad8282d9e0eff05bea61bbf51e0a",
    ),
    "dev1_male4_src_2.wav": (
        "sisec2011",
        SISEC_COMMIT,
        f"{SISEC_DIR}/dev1_male4_src_2.wav",
        "2713827b0b167c94a7ad278c53d1c87f67292d81",
        "f1e7a5bb22ef26de7a72e6a61b9f62e9219e2020cae68300bc5fb073de3aac3f",
    ),
    "dev1_male4_src_3.wav": (
        "sisec2011",
        SISEC_COMMIT,
        f"{SISEC_DIR}/dev1_male4_src_3.wav",
        "437f761fe76d6e9d91450cd8bcfc137fa94b2672",
        "f224ed5aeb1eb3134039a5775989f35a63f55a6d02176b26969ba5046b05a6d6",
    ),
    "dev1_male4_src_4.wav": (
        "sisec2011",
        SISEC_COMMIT,
        f"{SISEC_DIR}/dev1_male4_src_4.wav",
        "9b0e64283b0b4be1d4128629ec2f59c1cfe1b3c6",
        "1bbbe28a19c56abf16de5581a634ed0ce2471e9f141d725c3a4ca5371cf35a7b",
    ),
    "cmu_arctic_us_aew_a0001.wav": (
        "cmu_arctic",
        CMU_COMMIT,
        f"{CMU_DIR}/cmu_arctic_us_aew_a0001.wav",
        "f8f5034ea14ccc12d79c60e78c35fb9b3e8d425c",
        "d7b3b0ee49a0dbd26ea813d220a2f8d252ab47eda15af06542d4d21ec1447228",
    ),
    "cmu_arctic_us_aew_a0002.wav": (
        "cmu_arctic",
        CMU_COMMIT,
        f"{CMU_DIR}/cmu_arctic_us_aew_a0002.wav",
        "5c08c020c18b685f24eccc252891e291abb74040",
        "40641becf36e6b65a3aabfd7299778bf2c67eaa8fc4ce097d5b63ff33d7096fa",
    ),
    "cmu_arctic_us_aew_a0003.wav": (
        "cmu_arctic",
        CMU_COMMIT,
        f"{CMU_DIR}/cmu_arctic_us_aew_a0003.wav",
        "b783e152a57760efc72c97fcac7a5981e35731df",
        "9ab2f145deeebb375f47a93b6a45bf007962fde7402314b5a04a4d6318f6e93f",
    ),
    "cmu_arctic_us_axb_a0004.wav": (
        "cmu_arctic",
        CMU_COMMIT,
        f"{CMU_DIR}/cmu_arctic_us_axb_a0004.wav",
        "ddaf8160f10dfc36427f15e2c1e7f050c3c68743",
        "24612efb6612433a66b2327d2688740a966d00c2a4c8462fa3de80223f9d2bf2",
    ),
    "cmu_arctic_us_axb_a0005.wav": (
        "cmu_arctic",
        CMU_COMMIT,
        f"{CMU_DIR}/cmu_arctic_us_axb_a0005.wav",
        "a25ad33f4560090cb30c6c90ada40019dbc997f9",
        "b87c4ba7d75e51b84ed86469f7a29eca99106e24f50d1f3043ab8984372b6211",
    ),
    "cmu_arctic_us_axb_a0006.wav": (
        "cmu_arctic",
        CMU_COMMIT,
        f"{CMU_DIR}/cmu_arctic_us_axb_a0006.wav",
        "9a9d147d447459922bd217ab859123c9075c9b7c",
        "d1aa2fca52f5b0d3b918aea7ae7e4daf555f300f8ce749f5c9d851ae7f47f0c8",
    ),
    "arctic_a0010.wav": (
        "cmu_arctic",
        CMU_COMMIT,
        "notebooks/arctic_a0010.wav",
        "d64ac5b2b7503687ed865907b14e47d572a8761b",
        "5a08beb1ad34e39c5d54927eef1ef45089049401ca7d8d05926677f196e622b3",
    ),
    "6818-68772-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/6818-68772-0000.flac",
        "eb5f71d194edcb0df3dda742a00144b0944bccc7",
        "a8203d2d4f2489c161f9571447da5b4463d6e5ec87f8caf2d1ae04b3b0ab4cef",
    ),
    "8051-118101-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/8051-118101-0000.flac",
        "361889afbb450edfdc867b26cb3bbb9cbada88c7",
        "d6fe5434b38bdbeda96748c743eea22b37164b448fe38a41e7b9b3b520b15c3f",
    ),
    "4362-15663-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/4362-15663-0000.flac",
        "4b3c8d2cf02d5c1c92c6f02ace9ac645beb437d6",
        "b22e4e9f62d56a3962db47a9c507aa09b8af3c3cda352696dc4b572ad3a33f43",
    ),
    "6147-34605-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/6147-34605-0000.flac",
        "cbbdc9aadb75017db01198e08df0d396266625cf",
        "da95cc0635dd575ae4a0fe6de45a2b43948e1d2aabcfcb30540b4e500a1dee04",
    ),
    "5778-12761-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/5778-12761-0000.flac",
        "51205acb7157d8d3d772b0dec78c7060e039fea9",
        "5742bac1fe7c9e4c8167bb7acdbca27818f4029a0280bdbac64c0138bf7099fe",
    ),
    "3240-131231-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/3240-131231-0000.flac",
        "2c7cfe4a9bd69cbb5b72e53d39777ffaebc1cfdc",
        "852b40bdcb5bec2da9ec81f309cb053b83998d28a6e4656dec6c335a40d6abf5",
    ),
    "8630-305212-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/8630-305212-0000.flac",
        "b127b7ae73d0044a78a99a48908d223b8430290b",
        "f7a7c83795ed7e74fee997b418ba3ec30016b67832028951eb253003aee5b50b",
    ),
    "6836-61803-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/6836-61803-0000.flac",
        "9ab82c2ec0b45bc5b5c152317347ded9f7d58cba",
        "2109cfea1c6bc04da9cdb4861d29c904eab0e5e7b592508f904440550e8e55f8",
    ),
    "8419-286667-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/8419-286667-0000.flac",
        "40b7d50a3aeaa230276fe5b3006679fdaae853d4",
        "34d51856f47f78bd90dd51837cd2edb8f1bca60a82fc90556940b0a556c02c41",
    ),
    "5750-100289-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/5750-100289-0000.flac",
        "706668496467ad3946c4b61f7cba64f1c3a9d201",
        "f21f35ae3e8d0ec7cd0e3551035eab62970e7a8803f683334b11465afa5a00d9",
    ),
    "446-123501-0000.flac": (
        "librispeech",
        LIBRI_COMMIT,
        "audio_data/librispeech_train-clean-100/446-123501-0000.flac",
        "8298aa3ffa51507f9b0a430bf392c3158da03124",
        "6181bcfb81d5c343f03af6ea726d43bc8a950fe3258aab3025174d874684e7f5",
    ),
    "p238_165.wav": (
        "vctk",
        VCTK_COMMIT,
        "docs/vctk/samples/p238_165.wav",
        "1aae93451fd3c9449639439c94bfa115adbc8b32",
        "d62bdbce185f18fb9584338e30f0b864b278151a9428f0ea002dfe396ce49759",
    ),
    "p255_367.wav": (
        "vctk",
        VCTK_COMMIT,
        "docs/vctk/samples/p255_367.wav",
        "c671d8e83d7c2d8cc8b7b7c61c5601b579dce5b3",
        "fadb524ef961913afa0cc7049562db7b13a3cfe6f256174d8f99dc93dc280977",
    ),
    "p301_102.wav": (
        "vctk",
        VCTK_COMMIT,
        "docs/vctk/samples/p301_102.wav",
        "e80fff8736db11eb840bee799770340024877977",
        "8bd4021bf3ae96332224fd1ca0f73463e3f62de5bff8b80685a806f0bac90ce3",
    ),
    "p314_272.wav": (
        "vctk",
        VCTK_COMMIT,
        "docs/vctk/samples/p314_272.wav",
        "f5bee4639ee0d8042586cb4cb7bcb6c0fbebb589",
        "5a0c9f2c26fa5c0261a07eb11880747801605652098338f321268d562df911e0",
    ),
    "p376_193.wav": (
        "vctk",
        VCTK_COMMIT,
        "docs/vctk/samples/p376_193.wav",
        "468e531be93a2bdec958cbc9af5fd58b07dfa1ae",
        "6f3552c7c63924314865bf9d8f327f18241601201b2cc14ebedae2738bf46638",
    ),
}

# CMU ARCTIC speakers (http://www.festvox.org/cmu_arctic/): aew US male, axb Indian English female.
ARCTIC_SEX = {"aew": "male", "axb": "female"}
# A file that names no speaker: its sex, judged by ear and pitch (median F0 ~139 Hz, against 99-110
# Hz for aew and 211-239 Hz for axb); it is never paired with a CMU ARCTIC speaker of that sex.
UNNAMED_ARCTIC_SEX = {"arctic_a0010.wav": "male"}
# LibriSpeech (SPEAKERS.TXT) and VCTK (speaker-info) speakers, as their corpora's metadata say.
LIBRI_SEX = {
    "6818": "female",
    "8051": "female",
    "4362": "female",
    "6147": "female",
    "5778": "female",
    "3240": "male",
    "8630": "male",
    "6836": "male",
    "8419": "male",
    "5750": "male",
    "446": "male",
}
VCTK_SEX = {"p238": "female", "p255": "male", "p301": "female", "p314": "female", "p376": "male"}


class SourceError(ValueError):
    """A source file is missing, unreadable or has the wrong checksum."""


def source_url(name: str) -> str:
    """Where a source file lives: its corpus' repository, commit and path (:data:`SOURCES`)."""
    corpus, commit, path = SOURCES.get(name, ("", "", name))[:3]
    return f"{CORPUS_REPOS.get(corpus, REPO_URL)}/blob/{commit}/{path}"


# --------------------------------------------------------------------------------------------
# Speakers
# --------------------------------------------------------------------------------------------
# A source file's name -> (speaker, sex, corpus), one row per naming scheme.
SPEAKER_NAMES = (
    (
        r"dev1_(female|male)4_src_(\d+)\.wav",
        lambda m: (f"sisec_{m[1][0]}{m[2]}", m[1], "sisec2011"),
    ),
    (
        r"cmu_arctic_us_([a-z]{3})_a\d{4}\.wav",
        lambda m: (f"arctic_{m[1]}", ARCTIC_SEX.get(m[1]), "cmu_arctic"),
    ),
    (
        r"arctic_(a\d{4})\.wav",
        lambda m: (f"arctic_unnamed_{m[1]}", UNNAMED_ARCTIC_SEX.get(m[0]), "cmu_arctic"),
    ),
    (r"(\d+)-\d+-\d+\.flac", lambda m: (f"libri{m[1]}", LIBRI_SEX.get(m[1]), "librispeech")),
    (r"(p\d{3})_\d{3}\.wav", lambda m: (f"vctk_{m[1]}", VCTK_SEX.get(m[1]), "vctk")),
)


def speaker_of(name: str) -> dict[str, Optional[str]]:
    """Speaker, sex and corpus of a source file, from its name."""
    for pattern, fields in SPEAKER_NAMES:
        m = re.fullmatch(pattern, name)
        if m:
            return dict(zip(("speaker", "sex", "corpus"), fields(m)))
    raise ValueError(f"Cannot tell the speaker of {name!r} from its name.")


def may_pair(a: str, b: str) -> bool:
    """Whether files ``a`` and ``b`` are certainly spoken by two different people."""
    sa, sb = speaker_of(a), speaker_of(b)
    if sa["speaker"] == sb["speaker"]:
        return False
    unnamed = [s for s in (sa, sb) if s["speaker"].startswith("arctic_unnamed_")]
    if unnamed and sa["corpus"] == sb["corpus"] == "cmu_arctic":
        # an unnamed CMU ARCTIC speaker may be any CMU ARCTIC speaker of the same (or unknown) sex
        return sa["sex"] is not None and sb["sex"] is not None and sa["sex"] != sb["sex"]
    return True


# --------------------------------------------------------------------------------------------
# Reading and checking the sources
# --------------------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_cmd(repo: Path) -> Optional[list[str]]:
    """The git command prefix to read ``repo`` (a clone or a bare git dir), or None if
    not a git repository."""
    if (repo / ".git").exists():
        return ["git", "-C", str(repo)]
    if (repo / "HEAD").is_file() and (repo / "objects").is_dir():
        return ["git", "--git-dir", str(repo)]
    return None


def _git_blob(git: list[str], *objects: str) -> tuple[Optional[bytes], str]:
    """Raw content of the first of ``objects`` (``commit:path`` or a blob id) that git can read, and
    git's error message about the first (when none could be read)."""
    error = ""
    for obj in objects:
        try:
            res = subprocess.run(git + ["cat-file", "blob", obj], capture_output=True, check=False)
        except FileNotFoundError:
            raise SourceError(
                "git is not installed; it is needed to read --pyroomacoustics-dir."
            ) from None
        if res.returncode == 0:
            return res.stdout, ""
        error = error or res.stderr.decode(errors="replace").strip()  # the error about commit:path
    return None, error


def read_sources(
    pyroomacoustics_dir: Optional[Union[str, os.PathLike]] = None,
    sources_dir: Optional[Union[str, os.PathLike]] = None,
    names: Optional[Sequence[str]] = None,
    checksums: Optional[Mapping[str, str]] = None,
) -> dict[str, bytes]:
    """Bytes of every source file, each checked against its SHA-256.

    Args:
        pyroomacoustics_dir: a git clone or bare git dir of pyroomacoustics (files read with
            ``git cat-file blob <commit>:<path>``, then by blob id), or a plain copy of its tree.
        sources_dir: a folder holding the files by base name (used instead).
        names: files to read (default: those of the dev set, the :data:`CORPORA` of
            :data:`SOURCES`).
        checksums: ``{name: sha256}`` replacing the SHA-256 of :data:`SOURCES` (tests).

    Raises:
        SourceError: a file is missing or its checksum differs (the message
            names the file and the fix).
    """
    if (pyroomacoustics_dir is None) == (sources_dir is None):
        raise ValueError("Give exactly one of pyroomacoustics_dir and sources_dir.")
    if names is None:
        names = [name for name, row in SOURCES.items() if row[0] in CORPORA]
    names = list(names)
    expected = {n: SOURCES[n][4] for n in names if n in SOURCES}
    if checksums is not None:
        expected = dict(checksums)
    root = Path(pyroomacoustics_dir if pyroomacoustics_dir is not None else sources_dir)
    if not root.is_dir():
        raise SourceError(f"{root} is not a folder.")
    git = _git_cmd(root) if pyroomacoustics_dir is not None else None
    out: dict[str, bytes] = {}
    for name in names:
        if name not in expected:
            raise SourceError(f"No SHA-256 is known for {name}; add it to the checksum table.")
        corpus, commit, path, blob, _ = SOURCES.get(name, ("", "", name, "", ""))
        if sources_dir is not None:
            where = root / name
            data = where.read_bytes() if where.is_file() else None
            fix = f"copy {name} ({source_url(name)}) into {root}"
        elif git is not None:
            data, error = _git_blob(git, f"{commit}:{path}", blob)
            where = f"{root} at {commit[:7]}:{path}" + (f"; git says: {error}" if error else "")
            fix = (
                "fetch the commit (pull request #51, never merged) into that repository: git -C "
                f"{root} fetch {REPO_URL} pull/51/head:refs/pull/51/head"
                if corpus == "sisec2011"
                else f"fetch the release into that repository: git -C {root} "
                f"fetch {REPO_URL} tag v0.10.1"
            )
        else:
            where = root / path
            data = where.read_bytes() if where.is_file() else None
            fix = (
                f"check out {commit} (a plain copy of master lacks the SiSEC files: they live on "
                f"pull request #51) or pass a git clone instead"
                if corpus == "sisec2011"
                else f"check out {commit}"
            )
        if data is None:
            raise SourceError(f"Source file {name} not found ({where}). Fix: {fix}.")
        digest = _sha256(data)
        if digest != expected[name]:
            raise SourceError(
                f"Source file {name} ({where}) has SHA-256 {digest}, expected {expected[name]}. It "
                "is not the file this dev set is made of. Fix: replace it with the original "
                f"({source_url(name)})."
            )
        out[name] = data
    return out


def decode(data: bytes, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float64 samples of a wav file's bytes, resampled to ``sample_rate`` when needed."""
    import soundfile as sf

    wav, rate = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)
    wav = wav.mean(1)
    return resample(wav, int(rate), sample_rate)


# --------------------------------------------------------------------------------------------
# Planning and mixing
# --------------------------------------------------------------------------------------------
def plan_pairs(names: Sequence[str], n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``n`` file pairs of two different speakers: as many distinct speaker pairs as possible, then
    even use of speakers and files; ties broken by a random order drawn from ``rng``."""
    candidates = [(a, b) for a, b in itertools.combinations(sorted(names), 2) if may_pair(a, b)]
    if not candidates:
        raise ValueError("No two source files of different speakers to mix.")
    priority = rng.permutation(len(candidates))
    pair_use: dict[tuple[str, str], int] = {}
    spk_use: dict[str, int] = {}
    file_use: dict[str, int] = {}
    plan = []
    for _ in range(n):

        def cost(i):
            a, b = candidates[i]
            sa, sb = speaker_of(a)["speaker"], speaker_of(b)["speaker"]
            key = tuple(sorted((sa, sb)))
            return (
                pair_use.get(key, 0),
                spk_use.get(sa, 0) + spk_use.get(sb, 0),
                file_use.get(a, 0) + file_use.get(b, 0),
                int(priority[i]),
            )

        a, b = candidates[min(range(len(candidates)), key=cost)]
        sa, sb = speaker_of(a)["speaker"], speaker_of(b)["speaker"]
        key = tuple(sorted((sa, sb)))
        pair_use[key] = pair_use.get(key, 0) + 1
        for s in (sa, sb):
            spk_use[s] = spk_use.get(s, 0) + 1
        for f in (a, b):
            file_use[f] = file_use.get(f, 0) + 1
        plan.append((a, b) if rng.random() < 0.5 else (b, a))
    return plan


def trim(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Leading/trailing silence removed (rule of the synthetic corpus); returns (samples, start)."""
    active = np.flatnonzero(np.abs(wav) > TRIM_THRESHOLD * np.abs(wav).max())
    if active.size == 0:
        raise ValueError("silent recording")
    margin = int(TRIM_MARGIN_S * sample_rate)
    start, stop = max(active[0] - margin, 0), min(active[-1] + 1 + margin, len(wav))
    return wav[start:stop], int(start)


def active_frames(wav: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Boolean activity per 20 ms frame (power within 30 dB of the 95th percentile)."""
    frame = int(FRAME_S * sample_rate)
    n = len(wav) // frame
    power = (wav[: n * frame].reshape(n, frame) ** 2).mean(1)
    return power > np.percentile(power, 95) * 10 ** (ACTIVE_DB / 10)


def _choose_window(wav: np.ndarray, n: int, rng: np.random.Generator, sample_rate: int) -> int:
    """Start of a random ``n``-sample window with at least MIN_ACTIVE active frames (the best of
    MAX_TRIES draws otherwise)."""
    act = active_frames(wav, sample_rate)
    frame = int(FRAME_S * sample_rate)
    best, best_frac = 0, -1.0
    for _ in range(MAX_TRIES):
        start = int(rng.integers(0, len(wav) - n + 1))
        frac = float(act[start // frame : (start + n) // frame].mean())
        if frac >= MIN_ACTIVE:
            return start
        if frac > best_frac:
            best, best_frac = start, frac
    return best


def _place(
    utts: list[np.ndarray], n: int, rng: np.random.Generator, sample_rate: int
) -> list[dict]:
    """Where each trimmed utterance goes: a window of a longer one, or an
    offset for a shorter one."""
    spots = []
    for utt in utts:
        if len(utt) > n:
            spots.append(
                {"start": _choose_window(utt, n, rng, sample_rate), "offset": 0, "length": n}
            )
        else:
            spots.append(
                {"start": 0, "offset": int(rng.integers(0, n - len(utt) + 1)), "length": len(utt)}
            )
    short = [k for k, u in enumerate(utts) if len(u) <= n]
    if len(short) == 2:  # two short utterances: make them overlap
        need = MIN_OVERLAP * min(len(u) for u in utts)
        for _ in range(MAX_TRIES):
            a, b = spots
            overlap = min(a["offset"] + a["length"], b["offset"] + b["length"]) - max(
                a["offset"], b["offset"]
            )
            if overlap >= need:
                break
            for s in spots:
                s["offset"] = int(rng.integers(0, n - s["length"] + 1))
        else:
            for s in spots:  # centred: the shorter lies inside the longer
                s["offset"] = (n - s["length"]) // 2
    return spots


def _track(utt: np.ndarray, spot: dict, n: int, preroll: int) -> np.ndarray:
    """``preroll + n`` samples: the window (or the placed utterance) preceded by its past."""
    out = np.zeros(preroll + n)
    if spot["length"] == n and len(utt) > n:
        lo = max(spot["start"] - preroll, 0)
        seg = utt[lo : spot["start"] + n]
        out[preroll + n - len(seg) :] = seg
    else:
        out[preroll + spot["offset"] : preroll + spot["offset"] + len(utt)] = utt
    return out


def _quantise(
    targets: np.ndarray, sir_db: float, peak: float
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Sources scaled to ``sir_db`` (speaker 1 over 2) and ``peak``, rounded to
    int16; mix = integer sum."""
    gains = np.array(
        [10 ** (sir_db / 40) / _rms(targets[0]), 10 ** (-sir_db / 40) / _rms(targets[1])]
    )
    wet = targets * gains[:, None]
    scale = peak / max(np.abs(wet).max(), np.abs(wet.sum(0)).max())
    sources = np.round(wet * scale * 32767).astype(np.int32)
    mix = sources.sum(0)
    if np.abs(mix).max() > 32767 or np.abs(sources).max() > 32767:
        raise AssertionError("clipping")  # peak <= 0.9 of full scale: cannot happen
    return mix.astype(np.int16), sources.astype(np.int16), [float(g * scale) for g in gains]


def _sir(sources: np.ndarray) -> float:
    s = sources.astype(np.float64)
    return float(10 * np.log10((s[0] ** 2).sum() / (s[1] ** 2).sum()))


def make_mixture(
    names: tuple[str, str],
    audio: Mapping[str, np.ndarray],
    seed: int,
    index: int,
    n: int,
    sample_rate: int,
    conditions: Sequence[str],
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict]:
    """Mixture ``index`` of ``names`` in each condition: ``({condition: (mix, sources)}, info)``."""
    from scipy.signal import fftconvolve

    from asteroid_spmamba.data.mixing import _room_rirs

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0, index]))
    trimmed = [trim(audio[name], sample_rate) for name in names]
    utts = [t[0] for t in trimmed]
    spots = _place(utts, n, rng, sample_rate)
    sir_db = float(rng.uniform(*LEVEL_DB))
    peak = float(rng.uniform(*PEAK))
    preroll = int(PREROLL_S * sample_rate)
    tracks = np.stack([_track(u, s, n, preroll) for u, s in zip(utts, spots)])
    info = {
        "speakers": [speaker_of(name)["speaker"] for name in names],
        "sexes": [speaker_of(name)["sex"] for name in names],
        "files": list(names),
        # sample of the (resampled) source file where the window starts, and
        # where it lands in the mixture
        "source_start": [int(t[1] + s["start"]) for t, s in zip(trimmed, spots)],
        "mixture_offset": [int(s["offset"]) for s in spots],
        "source_length": [int(s["length"]) for s in spots],
        "active_fraction": [
            round(float(active_frames(t[preroll:], sample_rate).mean()), 3) for t in tracks
        ],
        "sir_db": round(sir_db, 4),
        "peak": round(peak, 4),
    }
    out = {}
    for condition in conditions:
        if condition == "anechoic":
            targets = tracks[:, preroll:]
            cond_info = {"room": None, "rt60": None}
        else:
            room_rng = np.random.default_rng(np.random.SeedSequence([seed, 1, index]))
            rirs, cond_info = _room_rirs(room_rng, sample_rate)
            targets = np.stack(
                [fftconvolve(tracks[k], rirs[k])[preroll : preroll + n] for k in range(2)]
            )
        mix, sources, gains = _quantise(targets, sir_db, peak)
        cond_info.update(
            {"gain": [round(g, 6) for g in gains], "sir_db_measured": round(_sir(sources), 4)}
        )
        info[condition] = cond_info
        out[condition] = (mix, sources)
    return out, info


# --------------------------------------------------------------------------------------------
# The dev set
# --------------------------------------------------------------------------------------------
def _versions() -> dict[str, Optional[str]]:
    return package_versions(("numpy", "scipy", "soundfile", "pyroomacoustics", "asteroid_spmamba"))


def make_dev_set(
    out_dir: Union[str, os.PathLike],
    pyroomacoustics_dir: Optional[Union[str, os.PathLike]] = None,
    sources_dir: Optional[Union[str, os.PathLike]] = None,
    n_mixtures: int = N_MIXTURES,
    seed: int = SEED,
    duration: float = DURATION_S,
    corpora: Sequence[str] = CORPORA,
    conditions: Sequence[str] = CONDITIONS,
    checksums: Optional[Mapping[str, str]] = None,
    progress: bool = True,
) -> Path:
    """Build the dev set in ``out_dir`` (see the module docstring); returns its path.

    ``checksums`` (``{name: sha256}``) replaces the SHA-256 table (tests). An existing ``out_dir``
    built with the same parameters and sources is kept as it is; any other existing ``out_dir`` is
    an error. The set is written in ``<out_dir>.partial`` and renamed when complete.
    """
    import soundfile as sf
    from tqdm import tqdm

    corpora = [c for c in ALL_CORPORA if c in corpora]
    conditions = [c for c in CONDITIONS if c in conditions]
    if not corpora or not conditions:
        raise ValueError(f"corpora must be among {ALL_CORPORA} and conditions among {CONDITIONS}.")
    if pyroomacoustics_dir is not None and set(corpora) & set(OTHER_CORPORA):
        raise ValueError(
            f"{', '.join(sorted(set(corpora) & set(OTHER_CORPORA)))} are not in pyroomacoustics: "
            "pass a folder holding their files by base name (sources_dir, --sources; "
            "--list-sources gives their URLs)."
        )
    if int(n_mixtures) != n_mixtures or n_mixtures < 1:
        raise ValueError(f"n_mixtures must be a positive integer, got {n_mixtures!r}.")
    if duration <= 0:
        raise ValueError(f"duration must be positive (seconds), got {duration}.")
    names = [name for name, row in SOURCES.items() if row[0] in corpora]
    data = read_sources(pyroomacoustics_dir, sources_dir, names, checksums)
    sha = {name: _sha256(data[name]) for name in names}
    params = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_mixtures": int(n_mixtures),
        "duration_s": float(duration),
        "sample_rate": SAMPLE_RATE,
        "corpora": corpora,
        "conditions": conditions,
        "source_sha256": sha,
    }

    out = Path(out_dir).absolute()
    if out.exists():
        try:
            existing = json.loads((out / "dev_set.json").read_text())["parameters"]
        except (OSError, ValueError, KeyError, TypeError):
            raise FileExistsError(
                f"{out} exists and holds no dev set (no readable dev_set.json); "
                "choose another folder or delete it."
            ) from None
        if existing != params:
            raise FileExistsError(
                f"{out} holds a dev set built with other parameters or sources; "
                "choose another folder or delete it."
            )
        print(f"{out} already holds this dev set (same parameters and sources); kept as it is.")
        return out

    audio = {name: decode(data[name]) for name in names}
    n = int(round(duration * SAMPLE_RATE))
    plan = plan_pairs(names, n_mixtures, np.random.default_rng(np.random.SeedSequence([seed, 2])))

    tmp = out.parent / f"{out.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)  # left by an interrupted run
    tmp.mkdir(parents=True)
    try:
        mixtures = []
        for index, pair in enumerate(
            tqdm(plan, desc="real dev set", unit="mix", disable=not progress)
        ):
            wavs, info = make_mixture(pair, audio, seed, index, n, SAMPLE_RATE, conditions)
            mid = f"{index:03d}_{info['speakers'][0]}_{info['speakers'][1]}"
            for condition, (mix, sources) in wavs.items():
                folder = tmp / condition / mid
                folder.mkdir(parents=True)
                for fname, wav in zip(WAV_FILES, (mix, sources[0], sources[1])):
                    sf.write(str(folder / fname), wav, SAMPLE_RATE, subtype=SUBTYPE)
            mixtures.append({"id": mid, **info})
        description = {
            "description": "Two-speaker mixtures of real speech ("
            + ", ".join(CORPUS_NAMES[c] for c in corpora)
            + ") in the Echo2Mix layout: {anechoic,reverb}/ID/{mix,spk1_reverb,spk2_reverb}.wav, "
            "16-bit PCM. Never used for training. Built by egs/realdev/local/make_dev_set.py of "
            "asteroid_spmamba.",
            "parameters": params,
            "mixing": {
                "sir_db": list(LEVEL_DB),
                "peak": list(PEAK),
                "min_active_fraction": MIN_ACTIVE,
                "active_frame_db": ACTIVE_DB,
                "min_overlap_short": MIN_OVERLAP,
                "preroll_s": PREROLL_S,
                "room": "asteroid_spmamba.data.mixing._room_rirs: shoebox 3-10 x 3-8 x 2.5-4 m, "
                "RT60 0.2-0.6 s (pyroomacoustics.inverse_sabine), one microphone, talkers >= 0.5 m "
                "from walls and microphone",
                "targets": "anechoic: dry sources scaled; reverb: reverberant images; "
                "mix = spk1 + spk2 exactly (int16)",
            },
            "sources": [
                {
                    "name": name,
                    **speaker_of(name),
                    "url": source_url(name),
                    "repository": CORPUS_REPOS[SOURCES[name][0]],
                    "commit": SOURCES[name][1],
                    "path": SOURCES[name][2],
                    "git_blob": SOURCES[name][3],
                    "sha256": sha[name],
                }
                for name in names
            ],
            "licences": {c: LICENCES[c] for c in corpora},
            "versions": _versions(),
            "mixtures": mixtures,
        }
        (tmp / "dev_set.json").write_text(json.dumps(description, indent=1) + "\n")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def wav_digests(root: Union[str, os.PathLike]) -> dict[str, str]:
    """``{relative path: SHA-256}`` of every wav under ``root``."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): _sha256(p.read_bytes()) for p in sorted(root.rglob("*.wav"))
    }


def compare_with_manifest(
    root: Union[str, os.PathLike], manifest: Union[str, os.PathLike] = MANIFEST
) -> list[str]:
    """Paths whose SHA-256 differs from ``manifest`` (``sha256sum`` format),
    or that one side lacks."""
    expected = {}
    for line in Path(manifest).read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            expected[rel.strip()] = digest
    found = wav_digests(root)
    return sorted(rel for rel in set(expected) | set(found) if expected.get(rel) != found.get(rel))


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description="Build the real-speech dev set (SiSEC 2011 dev1 + CMU ARCTIC speech from the "
        "pyroomacoustics repository; --corpora librispeech vctk: other talkers) in the Echo2Mix "
        "layout: "
        "OUT/{anechoic,reverb}/ID/{mix,spk1_reverb,spk2_reverb}.wav and OUT/dev_set.json. Every "
        "source file is checked against its SHA-256.",
    )
    p.add_argument("out", nargs="?", help="output folder (built in OUT.partial, then renamed)")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--pyroomacoustics-dir",
        help="git clone or bare git dir of pyroomacoustics (with pull request #51 fetched for the "
        f"SiSEC files: git fetch {REPO_URL} pull/51/head:refs/pull/51/head)",
    )
    src.add_argument("--sources", help="folder holding the source files by base name")
    p.add_argument(
        "--n-mixtures",
        type=int,
        default=N_MIXTURES,
        help=f"mixtures per condition (default {N_MIXTURES})",
    )
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument(
        "--duration", type=float, default=DURATION_S, help="mixture length in seconds (default 4)"
    )
    p.add_argument(
        "--corpora",
        nargs="+",
        choices=ALL_CORPORA,
        default=list(CORPORA),
        help="default: the dev set (sisec2011 cmu_arctic); librispeech vctk: other speakers "
        "(--sources only)",
    )
    p.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
    p.add_argument(
        "--list-sources", action="store_true", help="print the source table (URL, SHA-256) and exit"
    )
    p.add_argument(
        "--write-manifest",
        action="store_true",
        help=f"write the SHA-256 of the built wavs to {MANIFEST.name} "
        "(maintainers; default parameters)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.list_sources:
        for name, row in SOURCES.items():
            print(f"{row[4]}  {name}  {source_url(name)}")
        return 0
    if args.out is None or (args.pyroomacoustics_dir is None and args.sources is None):
        p.error("give OUT and one of --pyroomacoustics-dir, --sources")
    try:
        out = make_dev_set(
            args.out,
            args.pyroomacoustics_dir,
            args.sources,
            args.n_mixtures,
            args.seed,
            args.duration,
            args.corpora,
            args.conditions,
            progress=not args.quiet,
        )
    except (SourceError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"Dev set ready in {out}")
    default = (
        args.n_mixtures,
        args.seed,
        args.duration,
        sorted(args.corpora),
        sorted(args.conditions),
    ) == (N_MIXTURES, SEED, DURATION_S, sorted(CORPORA), sorted(CONDITIONS))
    if args.write_manifest:
        if not default:
            print("error: --write-manifest is for the default parameters only", file=sys.stderr)
            return 1
        MANIFEST.write_text("".join(f"{d}  {rel}\n" for rel, d in wav_digests(out).items()))
        print(f"SHA-256 of {len(wav_digests(out))} wavs written to {MANIFEST}")
    elif default and MANIFEST.is_file():
        differ = compare_with_manifest(out)
        if differ:
            print(
                f"warning: {len(differ)} wav file(s) differ from the published set ({MANIFEST}), "
                f"e.g. {differ[0]}; compare the package versions in {out / 'dev_set.json'} with "
                "those of the manifest's commit.",
                file=sys.stderr,
            )
        else:
            print(f"Every wav matches the published SHA-256 ({MANIFEST.name}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
