//! Media people send: files are kept in the agent's workspace (`files/YYYY-MM-DD/`), and images
//! are made fit for the providers (at most 1568 px on the long side and about 3.75 MB, as
//! Anthropic recommends and OpenAI accepts) with the `image` crate, re-encoded as JPEG when they
//! had to shrink. The original is kept beside what the model sees.

pub mod pdf;

use base64::Engine;
use std::path::{Path, PathBuf};

/// Longest side of an image given to a model.
const MAX_SIDE: u32 = 1568;
/// Largest image (encoded) given to a model.
const MAX_BYTES: usize = 3_750_000;
/// Media types the providers take as images.
const MODEL_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot store the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not an image this gateway can read: {0}")]
    Image(#[from] image::ImageError),
}

/// A name safe to use as a file name (no separators, no leading dots), at most 80 bytes.
pub fn safe_name(name: &str) -> String {
    // Only the last component of whatever path a sender's client put in the name.
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.');
    let mut out = if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned.to_string()
    };
    if out.len() > 80 {
        let cut = out.floor_char_boundary(80);
        out.truncate(cut);
    }
    out
}

/// Stores `bytes` as `dir/name` (a new name if that exists); returns the path.
pub fn store(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, MediaError> {
    std::fs::create_dir_all(dir)?;
    let name = safe_name(name);
    let mut path = dir.join(&name);
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{n}-{name}"));
    }
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// The image a model sees for the one stored at `original`: the original when it already fits,
/// else a downscaled JPEG beside it. Returns its path and media type.
pub fn for_model(
    original: &Path,
    bytes: &[u8],
    mime: &str,
) -> Result<(PathBuf, String), MediaError> {
    let img = image::load_from_memory(bytes)?;
    let fits = img.width().max(img.height()) <= MAX_SIDE && bytes.len() <= MAX_BYTES;
    if fits && MODEL_TYPES.contains(&mime) {
        return Ok((original.to_path_buf(), mime.to_string()));
    }
    let img = if img.width().max(img.height()) > MAX_SIDE {
        img.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let mut out = Vec::new();
    let rgb = image::DynamicImage::ImageRgb8(img.to_rgb8());
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    enc.encode_image(&rgb)?;
    let path = original.with_extension("model.jpg");
    std::fs::write(&path, &out)?;
    Ok((path, "image/jpeg".into()))
}

/// The base64 of a stored image (for a request), `None` if it is gone.
pub fn base64_of(path: &str) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| base64::engine::general_purpose::STANDARD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_images_are_downscaled_and_small_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let big = image::RgbImage::from_pixel(3000, 2000, image::Rgb([200, 30, 30]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(big)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let stored = store(dir.path(), "../../big photo.png", &png).unwrap();
        assert_eq!(stored.parent().unwrap(), dir.path());
        assert_eq!(stored.file_name().unwrap(), "big_photo.png");
        let (p, mime) = for_model(&stored, &png, "image/png").unwrap();
        assert_eq!(mime, "image/jpeg");
        let shrunk = image::open(&p).unwrap();
        assert_eq!(shrunk.width(), 1568);
        assert!(stored.exists(), "the original is kept");

        let small = image::RgbImage::from_pixel(10, 10, image::Rgb([1, 2, 3]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(small)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let s = store(dir.path(), "small.png", &png).unwrap();
        assert_eq!(
            for_model(&s, &png, "image/png").unwrap(),
            (s, "image/png".to_string())
        );
        assert!(for_model(dir.path(), b"not an image", "image/png").is_err());
    }
}
