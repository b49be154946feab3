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
    pub const ZERO: Resources = Resources { cpu_millis: 0, ram_mgib: 0, gpu: 0 };

    pub const fn new(cpu_millis: i64, ram_mgib: i64, gpu: i64) -> Self {
        Resources { cpu_millis, ram_mgib, gpu }
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourcesDto {
    /// CPU cores, up to 3 decimal places.
    pub cpu_cores: f64,
    /// RAM in GiB, up to 3 decimal places.
    pub ram_gib: f64,
    /// Whole GPUs.
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
