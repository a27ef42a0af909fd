//! Every other common audio format, through `symphonia` (pure Rust): MP3, M4A/AAC, FLAC,
//! Ogg/Vorbis and WebM/Matroska. WebM usually carries Opus, which symphonia demuxes but does not
//! decode: those packets go to `opus-rs`, as Ogg/Opus voice notes do. Everything ends as 16 kHz
//! mono, resampled like WAV.

use super::decode::{DecodeError, RATE, corrupt, resample};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, CODEC_TYPE_OPUS, DecoderOptions};
use symphonia::core::errors::Error;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The longest audio decoded (what a hostile file can make us hold): an hour, at its own rate.
const MAX_SECONDS: usize = 3600;

pub fn decode(bytes: &[u8]) -> Result<Vec<f32>, DecodeError> {
    let source = MediaSourceStream::new(
        Box::new(std::io::Cursor::new(bytes.to_vec())),
        Default::default(),
    );
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|_| DecodeError::Unsupported)?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or(DecodeError::Unsupported)?;
    let id = track.id;
    let params = track.codec_params.clone();
    let channels = params.channels.map_or(1, |c| c.count()).max(1);
    if params.codec == CODEC_TYPE_OPUS {
        return opus_packets(format.as_mut(), id, channels);
    }
    let rate = params
        .sample_rate
        .ok_or_else(|| corrupt("no sample rate"))? as usize;
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|_| DecodeError::Unsupported)?;
    let mut mono: Vec<f32> = Vec::new();
    let mut buf: Option<SampleBuffer<f32>> = None;
    while let Some(packet) = next_packet(format.as_mut(), id)? {
        let audio = match decoder.decode(&packet) {
            Ok(a) => a,
            // One damaged frame is skipped, as players do.
            Err(Error::DecodeError(_)) => continue,
            Err(e) => return Err(corrupt(e)),
        };
        let spec = *audio.spec();
        let ch = spec.channels.count().max(1);
        let needed = audio.capacity() as u64;
        let b = match &mut buf {
            Some(b) if b.capacity() as u64 >= needed * ch as u64 => b,
            _ => buf.insert(SampleBuffer::new(needed, spec)),
        };
        b.copy_interleaved_ref(audio);
        mono.extend(
            b.samples()
                .chunks(ch)
                .map(|f| f.iter().sum::<f32>() / ch as f32),
        );
        if mono.len() > rate * MAX_SECONDS {
            return Err(corrupt("longer than an hour"));
        }
    }
    if mono.is_empty() {
        return Err(corrupt("no audio in the file"));
    }
    resample(mono, rate)
}

/// The next packet of track `id`; `None` at the end of the stream.
fn next_packet(
    format: &mut dyn FormatReader,
    id: u32,
) -> Result<Option<symphonia::core::formats::Packet>, DecodeError> {
    loop {
        match format.next_packet() {
            Ok(p) if p.track_id() == id => return Ok(Some(p)),
            Ok(_) => {}
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(None);
            }
            Err(Error::ResetRequired) => return Ok(None),
            Err(e) => return Err(corrupt(e)),
        }
    }
}

/// Opus packets from a container symphonia reads (WebM), decoded straight to 16 kHz.
fn opus_packets(
    format: &mut dyn FormatReader,
    id: u32,
    channels: usize,
) -> Result<Vec<f32>, DecodeError> {
    if channels > 2 {
        return Err(corrupt("multichannel Opus is not supported"));
    }
    let mut decoder = opus_rs::OpusDecoder::new(RATE as i32, channels).map_err(corrupt)?;
    let max_frame = RATE * 120 / 1000;
    let mut pcm = vec![0f32; max_frame * channels];
    let mut out = Vec::new();
    while let Some(packet) = next_packet(format, id)? {
        let n = decoder
            .decode(&packet.data, max_frame, &mut pcm)
            .map_err(corrupt)?;
        out.extend(
            pcm[..n * channels]
                .chunks(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
        if out.len() > RATE * MAX_SECONDS {
            return Err(corrupt("longer than an hour"));
        }
    }
    if out.is_empty() {
        return Err(corrupt("no audio in the file"));
    }
    // The encoder's look-ahead (Opus' usual pre-skip, 312 samples at 48 kHz).
    out.drain(..(312 * RATE / 48_000).min(out.len()));
    Ok(out)
}
