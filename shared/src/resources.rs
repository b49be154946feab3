//! Resource quantities. Stored and summed as integers so books never drift:
//! CPU in millicores, RAM in thousandths of a GiB ("milli-GiB", exact for the
//! API's 0.001 GiB precision), GPUs as a count.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Resources {
    pub cpu_millis: i64,
    pub ram_mgib: i64,
    pub gpu: i64,
}

impl Resources {
    pub const ZERO: Resources = Resources {
        cpu_millis: 0,
        ram_mgib: 0,
        gpu: 0,
    };

    pub const fn new(cpu_millis: i64, ram_mgib: i64, gpu: i64) -> Self {
        Resources {
            cpu_millis,
            ram_mgib,
            gpu,
        }
    }

    /// True when `self` fits inside `available` on every resource.
    pub fn fits_in(&self, available: &Resources) -> bool {
        self.cpu_millis <= available.cpu_millis
            && self.ram_mgib <= available.ram_mgib
            && self.gpu <= available.gpu
    }

    pub fn minus(&self, other: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis - other.cpu_millis,
            ram_mgib: self.ram_mgib - other.ram_mgib,
            gpu: self.gpu - other.gpu,
        }
    }

    /// How much of each resource is missing for `self` to fit in `available` (0 where it fits).
    pub fn shortfall(&self, available: &Resources) -> Resources {
        Resources {
            cpu_millis: (self.cpu_millis - available.cpu_millis).max(0),
            ram_mgib: (self.ram_mgib - available.ram_mgib).max(0),
            gpu: (self.gpu - available.gpu).max(0),
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Resources::ZERO
    }

    /// The largest of `self`'s shares of `total`'s CPU, RAM and GPUs (a resource `total` has
    /// none of counts for nothing): DRF's dominant share.
    pub fn dominant_share_of(&self, total: &Resources) -> f64 {
        let share = |held: i64, of: i64| {
            if of > 0 {
                held.max(0) as f64 / of as f64
            } else {
                0.0
            }
        };
        share(self.cpu_millis, total.cpu_millis)
            .max(share(self.ram_mgib, total.ram_mgib))
            .max(share(self.gpu, total.gpu))
    }
}

impl std::ops::Add for Resources {
    type Output = Resources;
    fn add(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis + o.cpu_millis,
            ram_mgib: self.ram_mgib + o.ram_mgib,
            gpu: self.gpu + o.gpu,
        }
    }
}

impl std::ops::AddAssign for Resources {
    fn add_assign(&mut self, o: Resources) {
        *self = *self + o;
    }
}

impl std::ops::Sub for Resources {
    type Output = Resources;
    fn sub(self, o: Resources) -> Resources {
        self.minus(&o)
    }
}

impl std::ops::SubAssign for Resources {
    fn sub_assign(&mut self, o: Resources) {
        *self = *self - o;
    }
}

impl std::iter::Sum for Resources {
    fn sum<I: Iterator<Item = Resources>>(iter: I) -> Resources {
        iter.fold(Resources::ZERO, |a, b| a + b)
    }
}

/// The API's view of resources: `{"cpu_cores": 2.5, "ram_gib": 16, "gpu_count": 1}`.
/// An omitted quantity is 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourcesDto {
    /// CPU cores, up to 3 decimal places.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1000000.0, multiple_of = 0.001)]
    pub cpu_cores: f64,
    /// RAM in GiB, up to 3 decimal places.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 100000000.0, multiple_of = 0.001)]
    pub ram_gib: f64,
    /// Whole GPUs.
    #[serde(default, deserialize_with = "crate::whole_number::required")]
    #[schema(minimum = 0, maximum = 1000000)]
    pub gpu_count: i64,
}

impl From<Resources> for ResourcesDto {
    fn from(r: Resources) -> Self {
        ResourcesDto {
            cpu_cores: r.cpu_millis as f64 / 1000.0,
            ram_gib: r.ram_mgib as f64 / 1000.0,
            gpu_count: r.gpu,
        }
    }
}

/// Upper bounds that keep every sum far from overflow while allowing any real cluster.
pub const MAX_CPU_CORES: f64 = 1_000_000.0;
pub const MAX_RAM_GIB: f64 = 100_000_000.0;
pub const MAX_GPU_COUNT: i64 = 1_000_000;

/// Converts an API quantity with up to 3 decimals into thousandths, or says what is wrong.
pub fn thousandths(value: f64, max: f64) -> Result<i64, String> {
    if !value.is_finite() || value < 0.0 {
        return Err("must be a number of at least 0".into());
    }
    if value > max {
        return Err(format!("must be at most {max}"));
    }
    let scaled = value * 1000.0;
    if (scaled - scaled.round()).abs() > 1e-6 {
        return Err("must have at most 3 decimal places".into());
    }
    Ok(scaled.round() as i64)
}

impl ResourcesDto {
    /// Validates and converts to integer units; problems are reported under `prefix.field`.
    pub fn to_resources(&self, prefix: &str, errors: &mut crate::validate::Errors) -> Resources {
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        let mut out = Resources::ZERO;
        match thousandths(self.cpu_cores, MAX_CPU_CORES) {
            Ok(v) => out.cpu_millis = v,
            Err(e) => errors.add(field("cpu_cores"), e),
        }
        match thousandths(self.ram_gib, MAX_RAM_GIB) {
            Ok(v) => out.ram_mgib = v,
            Err(e) => errors.add(field("ram_gib"), e),
        }
        if !(0..=MAX_GPU_COUNT).contains(&self.gpu_count) {
            errors.add(
                field("gpu_count"),
                format!("must be a whole number from 0 to {MAX_GPU_COUNT}"),
            );
        } else {
            out.gpu = self.gpu_count;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Errors;

    #[test]
    fn quantities_round_trip_exactly() {
        let dto = ResourcesDto {
            cpu_cores: 2.5,
            ram_gib: 0.001,
            gpu_count: 1,
        };
        let mut errors = Errors::new();
        let r = dto.to_resources("", &mut errors);
        assert!(errors.finish().is_ok());
        assert_eq!(r, Resources::new(2500, 1, 1));
        assert_eq!(ResourcesDto::from(r), dto);
    }

    #[test]
    fn bad_quantities_are_named() {
        let dto = ResourcesDto {
            cpu_cores: -1.0,
            ram_gib: 0.0005,
            gpu_count: -2,
        };
        let mut errors = Errors::new();
        dto.to_resources("resources", &mut errors);
        let err = errors.finish().unwrap_err();
        let crate::ApiError::Validation(fields) = err else {
            panic!()
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "resources.cpu_cores",
                "resources.ram_gib",
                "resources.gpu_count"
            ]
        );
    }

    #[test]
    fn shortfall_counts_only_what_is_missing() {
        let need = Resources::new(4000, 1000, 2);
        let free = Resources::new(5000, 500, 0);
        assert_eq!(need.shortfall(&free), Resources::new(0, 500, 2));
        assert!(!need.fits_in(&free));
    }
}
